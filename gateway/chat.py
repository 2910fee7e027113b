"""POST /v1/chat/completions: the OpenAI chat protocol on the shared request path
(gateway.pipeline), to OpenAI-protocol providers as is and to Anthropic-protocol providers
through providers.translate."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

from core.errors import GatewayError
from core.outcome import RequestOutcome
from gateway.client_api import ClientApi, Headers, answer_json, send_priced
from gateway.http import Receive, Scope, Send
from gateway.pipeline import serve
from gateway.relay_decoders import completion_from
from gateway.relay_encoders import ChatEncoder
from gateway.relay_stream import relay_stream, usage_record
from gateway.relay_translated import relay_translated
from gateway.upstream_attempt import UpstreamAnswer, UpstreamRequest, chat_request
from gateway.validation import (
    chat_body_parse,
    chat_referenced_tokens,
    requested_output_tokens,
)
from providers.catalog import CatalogModel, Deployment


def _per_choice_tokens(body: dict[str, Any], model: CatalogModel) -> int:
    # What the client asked for is forwarded as is, so that is what may be produced (and
    # charged); the model's cap only stands in when the client set no limit.
    cap = model.max_output_tokens or settings.GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS
    return requested_output_tokens(body) or cap


class ChatApi(ClientApi):
    endpoint = "chat.completions"

    def parse(self, raw: bytes) -> dict[str, Any]:
        return chat_body_parse(raw)

    def referenced_tokens(self, body: dict[str, Any]) -> int:
        return chat_referenced_tokens(body)

    def output_tokens(self, body: dict[str, Any], model: CatalogModel) -> int:
        return _per_choice_tokens(body, model) * int(body.get("n") or 1)

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        return chat_request(body, deployment, _per_choice_tokens(body, model))

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
        translated = answer.deployment.protocol != "openai"
        if outcome.stream and translated:
            await relay_translated(
                send, ChatEncoder(body), body, body_bytes, answer, outcome, headers, started
            )
        elif outcome.stream:
            await relay_stream(send, body, body_bytes, answer, outcome, headers, started)
        else:
            await _relay_json(send, body, body_bytes, answer, outcome, headers)


CHAT = ChatApi()


async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(CHAT, scope, receive, send)


async def _relay_json(
    send: Send,
    body: dict[str, Any],
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: list[tuple[bytes, bytes]],
) -> None:
    read = answer_json(answer)
    try:
        data, usage = completion_from(read[0], answer, body["model"], body_bytes, read[1])
    except GatewayError as refused:  # e.g. a provider's safety filter blocked the prompt
        await CHAT.fail(send, outcome, refused, headers)
        return
    cost = usage_record(outcome, usage, answer.deployment)
    usage_out = data.get("usage")
    data["usage"] = {**(usage_out if isinstance(usage_out, dict) else {}), "cost": float(cost)}
    await send_priced(send, orjson.dumps(data), cost, headers)
