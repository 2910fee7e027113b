"""POST /v1/messages (Anthropic's Messages API) on the shared request path: to
Anthropic-protocol providers natively, to OpenAI-protocol providers through
gateway.translate; errors in Anthropic's shape. And POST /v1/messages/count_tokens."""

from __future__ import annotations

import math
from typing import Any

import orjson
from django.conf import settings

from gateway.auth import authenticate, key_allows_model
from gateway.errors import GatewayError, anthropic_error_body, not_found
from gateway.http import JSON_HEADERS, Receive, Scope, Send, read_body, send_bytes
from gateway.pipeline import ClientApi, Headers, answer_json, internal_error, send_priced, serve
from gateway.relay_stream import usage_estimate, usage_record
from gateway.relay_translated import (
    MessagesEncoder,
    completion_from,
    relay_messages_native,
    relay_translated,
)
from gateway.translate.anthropic_openai import (
    chat_to_message,
    messages_to_chat,
    usage_from_anthropic,
)
from gateway.upstream_call import (
    UpstreamAnswer,
    UpstreamRequest,
    chat_request,
    route_call,
)
from gateway.validation_messages import (
    FORWARDED_BETAS,
    messages_body_parse,
    messages_referenced_tokens,
)
from monitoring.services import RequestOutcome
from providers.adapters import anthropic
from providers.catalog import CatalogModel, Deployment, catalog_holder


def _client_headers(scope: Scope) -> dict[str, str]:
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
            return anthropic.messages_request(body, deployment, _client_headers(scope))
        chat = messages_to_chat(
            body,
            reasoning="reasoning" in model.capabilities,
            cache_control=deployment.cache_control,
        )
        return chat_request(chat, deployment, int(body["max_tokens"]))

    def error_body(self, error: GatewayError) -> bytes:
        return anthropic_error_body(error)

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
            await relay_messages_native(send, body_bytes, answer, outcome, headers, started)
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
            out = data  # the provider's own message
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


# What Anthropic's count_tokens takes (it refuses other fields).
COUNTED_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking")


def _estimate_tokens(body: dict[str, Any]) -> int:
    """~4 bytes of prompt per token: for models whose provider has no counting endpoint."""
    counted = {k: body.get(k) for k in ("system", "messages", "tools") if body.get(k)}
    return max(1, math.ceil(len(orjson.dumps(counted)) / 4))


async def count_tokens(scope: Scope, receive: Receive, send: Send) -> None:
    """Exact from an Anthropic-protocol provider's own counter; an estimate otherwise,
    marked `x-gatewayz-token-count: estimate`. Free, like Anthropic's."""
    try:
        identity = await authenticate(scope)
        raw = await read_body(scope, receive, settings.GATEWAYZ_MAX_BODY_BYTES)
        body = messages_body_parse(raw, counting=True)
        model = (await catalog_holder.get()).resolve(body["model"])
        if model is None or model.kind != "chat":
            raise not_found(f"The model '{body['model']}' does not exist.", code="model_not_found")
        key_allows_model(identity, body["model"], model.id)
        if not any(d.protocol == "anthropic" for d in model.deployments):
            estimate = orjson.dumps({"input_tokens": _estimate_tokens(body)})
            extra = [(b"x-gatewayz-token-count", b"estimate")]
            await send_bytes(send, 200, estimate, JSON_HEADERS + extra)
            return
        client_headers = _client_headers(scope)

        def build(model: CatalogModel, deployment: Deployment) -> UpstreamRequest | None:
            if deployment.protocol != "anthropic":
                return None
            upstream = {k: v for k, v in body.items() if k in COUNTED_FIELDS}
            url, headers, _ = anthropic.messages_request(upstream, deployment, client_headers)
            upstream["model"] = deployment.upstream_model_id
            return url + "/count_tokens", headers, orjson.dumps(upstream)

        answer = await route_call([(model, model.deployments)], build, False, [])
        answer.response.release()
        await send_bytes(send, 200, answer.body, JSON_HEADERS)
    except Exception as exc:
        error = exc if isinstance(exc, GatewayError) else internal_error(exc)
        await send_bytes(send, error.status, anthropic_error_body(error), JSON_HEADERS)
