"""OpenAI chat completion chunks encoded in the client's protocol, as SSE bytes: an Encoder
per client protocol (chat and Anthropic Messages here; the Responses API's is in
gateway.endpoints.responses).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from core.errors import GatewayError, anthropic_error_body
from core.usage import Usage, usage_estimate
from providers.protocols.base import Decoder
from providers.translate.anthropic_openai_streams import ChatChunksToMessageEvents


class Encoder:
    """OpenAI chat completion chunks → the client's protocol, as SSE bytes."""

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        raise NotImplementedError

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        """What ends a whole stream."""
        raise NotImplementedError

    def fail(self, error: GatewayError) -> bytes:
        """What ends a broken one."""
        raise NotImplementedError


class ChatEncoder(Encoder):
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = body["model"]
        self.wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        return [b"data: " + orjson.dumps(chunk) + b"\n\n"]

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        tail = b""
        if self.wants_usage:
            chunk = decoder.usage_chunk(self.model, usage)
            chunk["usage"]["cost"] = float(cost)
            tail = b"data: " + orjson.dumps(chunk) + b"\n\n"
        return tail + b"data: [DONE]\n\n"

    def fail(self, error: GatewayError) -> bytes:
        return b"data: " + error.body() + b"\n\n"


def anthropic_error_event(error: GatewayError) -> bytes:
    return b"event: error\ndata: " + anthropic_error_body(error) + b"\n\n"


class MessagesEncoder(Encoder):
    def __init__(self, body: dict[str, Any], body_bytes: int) -> None:
        prompt = usage_estimate(body_bytes, 0).prompt_tokens
        self.events = ChatChunksToMessageEvents(body["model"], input_tokens=prompt)

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        return self.events.feed(chunk)

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        return b"".join(self.events.finish_events(usage))

    def fail(self, error: GatewayError) -> bytes:
        return anthropic_error_event(error)
