"""POST /v1/responses (OpenAI's Responses API) on the shared request path: translated to a
chat completion request for whichever provider serves the model (providers.translate)."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings

from core.errors import GatewayError
from core.usage import Usage
from gateway.endpoints.validation import chat_referenced_tokens
from gateway.http import Receive, Scope, Send
from gateway.pipeline.client_api import ClientApi, completion_read, send_priced
from gateway.pipeline.serve import serve
from gateway.relay.context import RelayContext
from gateway.relay.encoders import Encoder
from gateway.relay.stream import usage_record
from gateway.relay.translated import relay_translated
from gateway.relay.upstream_attempt import UpstreamRequest
from providers.catalog import CatalogModel, Deployment
from providers.protocols import wire
from providers.protocols.base import Decoder
from providers.translate.responses_openai_answers import chat_to_response
from providers.translate.responses_openai_requests import responses_body_parse, responses_to_chat
from providers.translate.responses_openai_streams import ChatChunksToResponseEvents


def _output_tokens(body: dict[str, Any], model: CatalogModel) -> int:
    cap = model.max_output_tokens or settings.GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS
    return int(body.get("max_output_tokens") or cap)


class ResponsesEncoder(Encoder):
    def __init__(self, body: dict[str, Any]) -> None:
        self.events = ChatChunksToResponseEvents(body)

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        return self.events.feed(chunk)

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        return b"".join(self.events.finish_events(usage))

    def fail(self, error: GatewayError) -> bytes:
        return self.events.failed(error)


class ResponsesApi(ClientApi):
    endpoint = "responses"

    def parse(self, raw: bytes) -> dict[str, Any]:
        body = responses_body_parse(raw)
        body["_chat"] = responses_to_chat(body)  # validated once, reused for every deployment
        return body

    def referenced_tokens(self, body: dict[str, Any]) -> int:
        return chat_referenced_tokens(body["_chat"])

    def output_tokens(self, body: dict[str, Any], model: CatalogModel) -> int:
        return _output_tokens(body, model)

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        return wire(deployment).chat_request(body["_chat"], deployment, _output_tokens(body, model))

    async def relay(self, ctx: RelayContext) -> None:
        public = {k: v for k, v in ctx.body.items() if k != "_chat"}
        # The provider answered the chat request made of it: read as its answer.
        chat = replace(ctx, body=ctx.body["_chat"])
        if ctx.outcome.stream:
            await relay_translated(chat, ResponsesEncoder(public))
            return
        read = completion_read(chat)
        if isinstance(read, GatewayError):  # e.g. a provider's safety filter blocked it
            await self.fail(ctx.send, ctx.outcome, read, ctx.headers)
            return
        completion, usage = read
        cost = usage_record(ctx.outcome, usage, ctx.answer.deployment)
        response = chat_to_response(completion, public, usage)
        response["usage"]["cost"] = float(cost)
        await send_priced(ctx.send, orjson.dumps(response), cost, ctx.headers)


RESPONSES = ResponsesApi()


async def responses(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(RESPONSES, scope, receive, send)
