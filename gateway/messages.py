"""POST /v1/messages (Anthropic's Messages API) on the shared request path: to
Anthropic-protocol providers natively, to OpenAI-protocol providers through
providers.translate; answered as Anthropic's API answers: errors in its shape with a
`request_id`, a `request-id` header, `anthropic-ratelimit-*` headers, and a 400 without
`anthropic-version`. (Its count_tokens: gateway.count_tokens.)"""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import GatewayError, anthropic_error_body, bad_request
from core.outcome import RequestOutcome
from gateway.client_api import ClientApi, Headers, answer_json, send_priced
from gateway.http import Receive, Scope, Send, header
from gateway.limits import Admission
from gateway.pipeline import serve
from gateway.relay_decoders import completion_from
from gateway.relay_encoders import MessagesEncoder
from gateway.relay_stream import usage_estimate, usage_record
from gateway.relay_translated import relay_messages_native, relay_translated
from gateway.upstream_attempt import UpstreamAnswer, UpstreamRequest, chat_request
from gateway.validation_messages import (
    FORWARDED_BETAS,
    messages_body_parse,
    messages_referenced_tokens,
)
from providers.adapters import anthropic
from providers.catalog import CatalogModel, Deployment
from providers.translate.anthropic_openai_answers import chat_to_message
from providers.translate.anthropic_openai_usage import usage_from_anthropic
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
        if deployment.protocol == "anthropic":
            return anthropic.messages_request(body, deployment, client_headers(scope))
        chat = messages_to_chat(
            body,
            reasoning="reasoning" in model.capabilities,
            cache_control=deployment.cache_control,
        )
        return chat_request(chat, deployment, int(body["max_tokens"]))

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

    async def relay(
        self,
        send: Send,
        body: dict[str, Any],
        body_bytes: int,
        answer: UpstreamAnswer,
        outcome: RequestOutcome,
        headers: Headers,
        started: float,
    ) -> None:
        native = answer.deployment.protocol == "anthropic"
        if outcome.stream and native:
            await relay_messages_native(
                send, body["model"], body_bytes, answer, outcome, headers, started
            )
        elif outcome.stream:
            await relay_translated(
                send, MessagesEncoder(body), body, body_bytes, answer, outcome, headers, started
            )
        else:
            await self._relay_json(send, body, body_bytes, answer, outcome, headers)

    async def _relay_json(
        self,
        send: Send,
        body: dict[str, Any],
        body_bytes: int,
        answer: UpstreamAnswer,
        outcome: RequestOutcome,
        headers: Headers,
    ) -> None:
        read = answer_json(answer)
        data, size = read
        if answer.deployment.protocol == "anthropic":
            usage = usage_from_anthropic(data.get("usage")) or usage_estimate(body_bytes, size // 4)
            out = {**data, "model": body["model"]}  # the provider's own message
        else:
            try:
                completion, usage = completion_from(data, answer, body["model"], body_bytes, size)
            except GatewayError as refused:  # e.g. a provider's safety filter blocked it
                await self.fail(send, outcome, refused, headers)
                return
            out = chat_to_message(completion, model=body["model"], usage=usage)
        cost = usage_record(outcome, usage, answer.deployment)
        await send_priced(send, orjson.dumps(out), cost, headers)


MESSAGES = MessagesApi()


async def messages(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(MESSAGES, scope, receive, send)
