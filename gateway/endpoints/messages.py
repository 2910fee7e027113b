"""POST /v1/messages (Anthropic's Messages API) on the shared request path: to
Anthropic-protocol providers natively, to OpenAI-protocol providers through
providers.translate; answered as Anthropic's API answers: errors in its shape with a
`request_id`, a `request-id` header, `anthropic-ratelimit-*` headers, and a 400 without
`anthropic-version`. (Its count_tokens: gateway.endpoints.count_tokens.)"""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import GatewayError, anthropic_error_body, bad_request
from core.usage import Usage, usage_estimate
from gateway.endpoints.validation_messages import (
    FORWARDED_BETAS,
    messages_body_parse,
    messages_referenced_tokens,
)
from gateway.guards.limits import Admission
from gateway.http import Receive, Scope, Send, header
from gateway.pipeline.client_api import (
    ClientApi,
    Headers,
    answer_json,
    completion_read,
    send_priced,
)
from gateway.pipeline.serve import serve
from gateway.relay.context import RelayContext
from gateway.relay.encoders import MessagesEncoder
from gateway.relay.stream import usage_record
from gateway.relay.translated import relay_messages_native, relay_translated
from gateway.relay.upstream_attempt import UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire
from providers.translate.anthropic_openai_answers import chat_to_message
from providers.translate.fields import MESSAGES_TO_CHAT, fields_dropped
from providers.translate.messages_to_chat import messages_to_chat


def client_headers(scope: Scope) -> dict[str, str]:
    """The client's `anthropic-version`, and those of its betas that change no price."""
    headers: dict[str, str] = {}
    for name, value in scope["headers"]:
        if name == b"anthropic-version":
            headers["anthropic-version"] = value.decode("latin-1")
        elif name == b"anthropic-beta":
            betas = [b.strip() for b in value.decode("latin-1").split(",")]
            kept = [b for b in betas if b in FORWARDED_BETAS]
            if kept:
                headers["anthropic-beta"] = ",".join(kept)
    return headers


class MessagesApi(ClientApi):
    endpoint = "messages"

    def parse(self, raw: bytes) -> dict[str, Any]:
        return messages_body_parse(raw)

    def referenced_tokens(self, body: dict[str, Any]) -> int:
        return messages_referenced_tokens(body)

    def output_tokens(self, body: dict[str, Any], model: CatalogModel) -> int:
        return int(body["max_tokens"])

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        protocol = wire(deployment)
        if protocol.speaks_messages:
            return protocol.messages_request(body, deployment, client_headers(scope))
        chat = messages_to_chat(
            body,
            reasoning="reasoning" in model.capabilities,
            cache_control=deployment.cache_control,
            extensions=protocol.chat_extensions,
        )
        return protocol.chat_request(chat, deployment, int(body["max_tokens"]))

    def dropped(self, body: dict[str, Any], deployment: Deployment) -> list[str]:
        protocol = wire(deployment)
        if protocol.speaks_messages:
            return []
        return fields_dropped(body, MESSAGES_TO_CHAT, carried=protocol.chat_extensions)

    def error_body(self, error: GatewayError, request_id: str) -> bytes:
        return anthropic_error_body(error, request_id)

    def id_headers(self, request_id: str) -> Headers:
        # Anthropic's `request-id`, and `x-request-id` as on every other route.
        value = request_id.encode()
        return [(b"request-id", value), (b"x-request-id", value)]

    def limit_headers(self, admission: Admission) -> Headers:
        return admission.anthropic_headers()

    def headers_check(self, scope: Scope) -> None:
        # Anthropic's API refuses a request without it (its SDKs always send it); the
        # version is passed on to Anthropic-protocol providers.
        version = header(scope, b"anthropic-version")
        if version is None or not version.strip():
            raise bad_request("anthropic-version: header is required")

    async def relay(self, ctx: RelayContext) -> None:
        native = wire(ctx.answer.deployment).speaks_messages
        if ctx.outcome.stream and native:
            await relay_messages_native(ctx)
        elif ctx.outcome.stream:
            await relay_translated(ctx, MessagesEncoder(ctx.body, ctx.body_bytes))
        elif native:
            data, size = answer_json(ctx.answer)
            usage = wire(ctx.answer.deployment).messages_usage(data) or usage_estimate(
                ctx.body_bytes, size // 4
            )
            await self._send_priced(ctx, {**data, "model": ctx.body["model"]}, usage)
        else:
            read = completion_read(ctx)
            if isinstance(read, GatewayError):  # e.g. a provider's safety filter blocked it
                await self.fail(ctx.send, ctx.outcome, read, ctx.headers)
                return
            completion, usage = read
            message = chat_to_message(completion, model=ctx.body["model"], usage=usage)
            await self._send_priced(ctx, message, usage)

    async def _send_priced(self, ctx: RelayContext, message: dict[str, Any], usage: Usage) -> None:
        cost = usage_record(ctx.outcome, usage, ctx.answer.deployment)
        await send_priced(ctx.send, orjson.dumps(message), cost, ctx.headers)


MESSAGES = MessagesApi()


async def messages(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(MESSAGES, scope, receive, send)
