"""POST /v1/responses (OpenAI's Responses API) on the shared request path: translated to a
chat completion request for whichever provider serves the model (providers.translate), the
answer kept for its customer unless `store` is false (gateway.endpoints.responses_state)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings

from core.errors import GatewayError
from core.outcome import RequestOutcome
from core.usage import Usage
from gateway.endpoints.responses_state import (
    conversation,
    expand_input,
    kept,
    remember,
    stored_entry,
)
from gateway.endpoints.validation import chat_referenced_tokens
from gateway.http import Receive, Scope, Send
from gateway.keycache import KeyIdentity
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

JSON = dict[str, Any]


def _output_tokens(body: dict[str, Any], model: CatalogModel) -> int:
    cap = model.max_output_tokens or settings.GATEWAYZ_DEFAULT_MAX_OUTPUT_TOKENS
    return int(body.get("max_output_tokens") or cap)


class ResponsesEncoder(Encoder):
    def __init__(self, body: dict[str, Any], answered: Callable[[JSON], None]) -> None:
        self.events = ChatChunksToResponseEvents(body)
        self.answered = answered  # told the final Response before it is sent

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        return self.events.feed(chunk)

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        events = self.events.finish_events(usage)
        self.answered(self.events.response)
        return b"".join(events)

    def fail(self, error: GatewayError) -> bytes:
        return self.events.failed(error)


class ResponsesApi(ClientApi):
    endpoint = "responses"

    prepares = True

    def parse(self, raw: bytes) -> dict[str, Any]:
        return responses_body_parse(raw)

    async def prepare(self, body: JSON, identity: KeyIdentity) -> None:
        """Reads the conversation the request continues, and translates it with the input
        once for every deployment (the gateway's own keys start with `_`)."""
        chain, items = await expand_input(body, identity.user_id)
        body["_chain"], body["_input"] = chain, items
        # A continued conversation goes upstream without being in the body: its bytes bound
        # its tokens, as the body's do (counted once, for every model of the route).
        body["_history_bytes"] = len(orjson.dumps(chain)) if chain else 0
        body["_chat"] = responses_to_chat({**body, "input": [*conversation(chain), *items]})

    def referenced_tokens(self, body: dict[str, Any]) -> int:
        return chat_referenced_tokens(body["_chat"]) + body["_history_bytes"]

    def output_tokens(self, body: dict[str, Any], model: CatalogModel) -> int:
        return _output_tokens(body, model)

    def build(
        self, body: dict[str, Any], deployment: Deployment, model: CatalogModel, scope: Scope
    ) -> UpstreamRequest | None:
        return wire(deployment).chat_request(body["_chat"], deployment, _output_tokens(body, model))

    async def relay(self, ctx: RelayContext) -> None:
        public = {k: v for k, v in ctx.body.items() if not k.startswith("_")}
        # The provider answered the chat request made of it: read as its answer.
        chat = replace(ctx, body=ctx.body["_chat"])
        keeping = _Keeping(ctx.body, ctx.outcome)
        if ctx.outcome.stream:
            await relay_translated(chat, ResponsesEncoder(public, keeping.answered))
            await keeping.shared()
            return
        read = completion_read(chat)
        if isinstance(read, GatewayError):  # e.g. a provider's safety filter blocked it
            await self.fail(ctx.send, ctx.outcome, read, ctx.headers)
            return
        completion, usage = read
        cost = usage_record(ctx.outcome, usage, ctx.answer.deployment)
        response = chat_to_response(completion, public, usage)
        response["usage"]["cost"] = float(cost)
        keeping.answered(response)
        await keeping.shared()  # before the client can ask for it
        await send_priced(ctx.send, orjson.dumps(response), cost, ctx.headers)


class _Keeping:
    """An answer to keep (unless `store` is false): in the request's usage event for the
    database, and at once in Redis (or this process) for the next requests."""

    def __init__(self, body: JSON, outcome: RequestOutcome) -> None:
        self.body, self.outcome = body, outcome
        self.write: Awaitable[Any] | None = None

    def answered(self, response: JSON) -> None:
        if self.body.get("store") is False or response["status"] == "failed":
            return
        entry = stored_entry(self.body, response)
        self.outcome.stored = entry
        self.write = remember(response["id"], self.outcome.user_id, [*self.body["_chain"], entry])

    async def shared(self) -> None:
        await kept(self.write)


RESPONSES = ResponsesApi()


async def responses(scope: Scope, receive: Receive, send: Send) -> None:
    await serve(RESPONSES, scope, receive, send)
