"""POST /v1/chat/completions: the OpenAI chat protocol on the shared request path
(gateway.pipeline.serve), to OpenAI-protocol providers as is and to Anthropic-protocol providers
through providers.translate."""

from __future__ import annotations

from typing import Any

import orjson
from django.conf import settings

from core.errors import GatewayError
from gateway.endpoints.validation import (
    chat_body_parse,
    chat_referenced_tokens,
    requested_output_tokens,
)
from gateway.http import Receive, Scope, Send
from gateway.pipeline.client_api import ClientApi, completion_read, provider_drops, send_priced
from gateway.pipeline.serve import serve
from gateway.relay.context import RelayContext
from gateway.relay.encoders import ChatEncoder
from gateway.relay.stream import relay_stream, usage_record
from gateway.relay.translated import relay_translated
from gateway.relay.upstream_attempt import UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire
from providers.translate.fields import fields_dropped


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
        return wire(deployment).chat_request(body, deployment, _per_choice_tokens(body, model))

    def dropped(self, body: dict[str, Any], deployment: Deployment) -> list[str]:
        table = wire(deployment).chat_fields
        drops = provider_drops(body, deployment)
        return drops + fields_dropped(body, table) if table is not None else drops

    async def relay(self, ctx: RelayContext) -> None:
        translated = not wire(ctx.answer.deployment).speaks_chat
        if ctx.outcome.stream and translated:
            await relay_translated(ctx, ChatEncoder(ctx.body))
        elif ctx.outcome.stream:
            await relay_stream(ctx)
        else:
            await _relay_json(ctx)


CHAT = ChatApi()


async def chat_completions(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(CHAT, scope, receive, send)


async def _relay_json(ctx: RelayContext) -> None:
    read = completion_read(ctx)
    if isinstance(read, GatewayError):  # e.g. a provider's safety filter blocked the prompt
        await CHAT.fail(ctx.send, ctx.outcome, read, ctx.headers)
        return
    data, usage = read
    cost = usage_record(ctx.outcome, usage, ctx.answer.deployment)
    usage_out = data.get("usage")
    data["usage"] = {**(usage_out if isinstance(usage_out, dict) else {}), "cost": float(cost)}
    await send_priced(ctx.send, orjson.dumps(data), cost, ctx.headers)
