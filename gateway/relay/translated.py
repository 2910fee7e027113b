"""Relaying streams whose provider speaks another protocol than the client, or the Anthropic
protocol natively: upstream SSE events are parsed one by one (the OpenAI → OpenAI fast path
in relay_stream.py never decodes them), decoded into OpenAI chunks by the provider's
protocol (providers.protocols), and encoded in the client's protocol
(gateway.relay.encoders), both through providers.translate. Every relay meters the stream,
and a cut one ends with a well-formed error event in the client's protocol and is billed
for what was produced.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson

from core.errors import GatewayError
from core.outcome import RequestOutcome
from core.usage import Usage
from gateway.http import SSE_HEADERS, Send
from gateway.relay.context import Headers, RelayContext
from gateway.relay.encoders import Encoder, anthropic_error_event
from gateway.relay.stream import (
    cut_stream_usage,
    model_renamer,
    stream_interrupted,
    usage_estimate,
    usage_record,
)
from gateway.relay.upstream import UpstreamError
from gateway.relay.upstream_attempt import UpstreamAnswer
from providers.protocols import wire
from providers.protocols.base import Decoder
from providers.protocols.sse import sse_events
from providers.translate.anthropic_openai_answers import upstream_error
from providers.translate.anthropic_openai_usage import usage_from_anthropic
from providers.upstream_errors import detail_keep


async def _start(send: Send, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})


async def _send(send: Send, out: list[bytes], outcome: RequestOutcome, started: float) -> None:
    if outcome.ttft_ms is None:
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})


async def _decode(
    send: Send,
    answer: UpstreamAnswer,
    decoder: Decoder,
    encode: Callable[[list[dict[str, Any]]], list[bytes]],
    outcome: RequestOutcome,
    started: float,
) -> GatewayError | None:
    """Relays the upstream's stream through `decoder` and `encode`; returns the error that
    ended it, or None when it ended whole."""
    try:
        async for batch in sse_events(answer.blocks()):
            chunks = []
            for name, data in batch:
                chunks.extend(decoder.feed(name, data))
                if decoder.stop_reading() or decoder.error() is not None:
                    break
            decoder.produced += sum(1 for c in chunks if _has_content(c))
            out = encode(chunks)
            if out:
                await _send(send, out, outcome, started)
            if decoder.stop_reading() or decoder.error() is not None:
                break
    except (*UpstreamError, orjson.JSONDecodeError):
        return decoder.error() or stream_interrupted(answer.deployment.provider)
    finally:
        answer.response.release()
    if decoder.error() is not None:
        return decoder.error()
    return None if decoder.finished() else stream_interrupted(answer.deployment.provider)


def _has_content(chunk: dict[str, Any]) -> bool:
    for choice in chunk.get("choices") or []:
        delta = choice.get("delta") or {}
        if delta.get("content") or delta.get("tool_calls") or delta.get("reasoning_content"):
            return True
    return False


def billed_usage(
    usage: Usage | None, error: GatewayError | None, produced: int, body_bytes: int
) -> Usage:
    """What a stream is billed for. Whole: the provider's usage (an estimate if it sent
    none). Refused by the provider (a 4xx in the stream, e.g. a safety block): nothing.
    Cut: the one rule for cut streams (gateway.relay.stream.cut_stream_usage)."""
    if error is None:
        return usage or usage_estimate(body_bytes, produced)
    if error.status < 500:
        return Usage()
    return cut_stream_usage(usage, produced, body_bytes)


async def relay_translated(ctx: RelayContext, encoder: Encoder) -> None:
    """A provider's stream, decoded to OpenAI chunks and encoded in the client's protocol."""
    send, body, answer, outcome = ctx.send, ctx.body, ctx.answer, ctx.outcome
    body_bytes, headers, started = ctx.body_bytes, ctx.headers, ctx.started
    decoder = wire(answer.deployment).chat_decoder(body, answer.deployment)
    await _start(send, headers)

    def encode(chunks: list[dict[str, Any]]) -> list[bytes]:
        return [piece for chunk in chunks for piece in encoder.feed(chunk)]

    error = await _decode(send, answer, decoder, encode, outcome, started)
    usage = billed_usage(decoder.usage, error, decoder.produced, body_bytes)
    cost = usage_record(outcome, usage, answer.deployment)
    if error is None:
        tail = encoder.finish(decoder, usage, cost)
    else:
        outcome.status, outcome.error_type = error.status, error.code or "upstream_error"
        detail_keep(outcome.attempts, error)
        tail = encoder.fail(error)
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def relay_messages_native(ctx: RelayContext) -> None:
    """An Anthropic-protocol stream to an Anthropic client: relayed as it comes; only the
    events that carry usage, the end or an error are decoded."""
    send, answer, outcome, started = ctx.send, ctx.answer, ctx.outcome, ctx.started
    model, body_bytes = ctx.body["model"], ctx.body_bytes
    usage: Usage | None = None
    produced = 0
    done = False
    error: GatewayError | None = None
    renamed = model_renamer(model)
    await _start(send, ctx.headers)
    try:
        async for batch in sse_events(answer.blocks()):
            out = []
            for name, data in batch:
                if name == b"content_block_delta":
                    produced += 1
                elif name in (b"message_start", b"message_delta"):
                    if name == b"message_start":
                        data = renamed(data)  # the model the client asked for
                    event = orjson.loads(data)
                    raw = (event.get("message") or {}).get("usage") or event.get("usage")
                    usage = usage_from_anthropic(raw, previous=usage)
                elif name == b"message_stop":
                    done = True
                elif name == b"error":
                    error = upstream_error(
                        orjson.loads(data).get("error") or {}, answer.deployment.provider
                    )
                out.append(b"event: " + name + b"\ndata: " + data + b"\n\n")
            if out:
                await _send(send, out, outcome, started)
            if done or error is not None:
                break
    except (*UpstreamError, orjson.JSONDecodeError):
        pass
    finally:
        answer.response.release()

    tail = b""
    if not done and error is None:
        error = stream_interrupted(answer.deployment.provider)
        tail = anthropic_error_event(error)  # a provider's own error event was relayed as is
    usage_record(outcome, billed_usage(usage, error, produced, body_bytes), answer.deployment)
    if error is not None:
        outcome.status, outcome.error_type = 502, error.code or "upstream_error"
        detail_keep(outcome.attempts, error)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
