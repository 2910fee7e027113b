"""Relaying streams whose provider speaks another protocol than the client, or the Anthropic
protocol natively: upstream SSE events are parsed one by one (the OpenAI → OpenAI fast path
in relay_stream.py never decodes them), translated in gateway.translate, and sent in the
client's protocol. Every relay meters the stream, and a cut one ends with a well-formed
error event in the client's protocol and is billed for what was produced.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from billing.pricing import Usage
from gateway.errors import GatewayError, anthropic_error_body
from gateway.http import SSE_HEADERS, Send
from gateway.relay_stream import usage_estimate, usage_record
from gateway.translate.anthropic_openai import (
    ChatChunksToMessageEvents,
    MessageEventsToChatChunks,
    upstream_error,
    usage_from_anthropic,
)
from gateway.upstream import UpstreamError
from gateway.upstream_call import UpstreamAnswer
from monitoring.services import RequestOutcome

Headers = list[tuple[bytes, bytes]]


async def sse_events(answer: UpstreamAnswer) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """The upstream's SSE events as (event name, data) pairs, a batch per network read."""
    pending = b""
    name = b""
    data: list[bytes] = []
    async for block in answer.response.content.iter_any():
        *lines, pending = (pending + block).split(b"\n")
        batch = []
        for line in lines:
            line = line.rstrip(b"\r")
            if not line:
                if data:
                    batch.append((name, b"\n".join(data)))
                name, data = b"", []
            elif line.startswith(b"data:"):
                data.append(line[5:].strip())
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if batch:
            yield batch


def _interrupted(provider: str) -> GatewayError:
    return GatewayError(
        502,
        f"{provider} ended the stream early.",
        type="upstream_error",
        code="upstream_stream_interrupted",
    )


async def _start(send: Send, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})


async def _send(send: Send, out: list[bytes], outcome: RequestOutcome, started: float) -> None:
    if outcome.ttft_ms is None:
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})


async def relay_chat_from_anthropic(
    send: Send,
    body: dict[str, Any],
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: Headers,
    started: float,
    model_id: str,
) -> None:
    """An Anthropic-protocol stream to an OpenAI chat completions client."""
    wants_usage = bool((body.get("stream_options") or {}).get("include_usage"))
    translator = MessageEventsToChatChunks(model_id)
    produced = 0
    await _start(send, headers)
    try:
        async for batch in sse_events(answer):
            out = []
            for _, data in batch:
                for chunk in translator.feed(orjson.loads(data)):
                    produced += 1
                    out.append(b"data: " + orjson.dumps(chunk) + b"\n\n")
            if out:
                await _send(send, out, outcome, started)
            if translator.done or translator.error is not None:
                break
    except (*UpstreamError, orjson.JSONDecodeError):
        pass
    finally:
        answer.response.release()

    usage = translator.usage or usage_estimate(body_bytes, produced)
    cost = usage_record(outcome, usage, answer.deployment)
    if translator.done:
        tail = b""
        if wants_usage:
            chunk = translator.usage_chunk(usage)
            chunk["usage"]["cost"] = float(cost)
            tail = b"data: " + orjson.dumps(chunk) + b"\n\n"
        tail += b"data: [DONE]\n\n"
    else:
        error = (
            upstream_error(translator.error, answer.deployment.provider)
            if translator.error is not None
            else _interrupted(answer.deployment.provider)
        )
        outcome.status, outcome.error_type = 502, error.code or "upstream_error"
        tail = b"data: " + error.body() + b"\n\n"
    await send({"type": "http.response.body", "body": tail, "more_body": False})


def _anthropic_error_event(error: GatewayError) -> bytes:
    return b"event: error\ndata: " + anthropic_error_body(error) + b"\n\n"


async def relay_messages_from_openai(
    send: Send,
    body: dict[str, Any],
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: Headers,
    started: float,
) -> None:
    """An OpenAI-protocol stream to an Anthropic Messages client."""
    translator = ChatChunksToMessageEvents(body["model"])
    produced = 0
    done = False
    await _start(send, headers)
    try:
        async for batch in sse_events(answer):
            out: list[bytes] = []
            for _, data in batch:
                if data == b"[DONE]":
                    done = True
                    break
                events = translator.feed(orjson.loads(data))
                produced += len(events)
                out.extend(events)
            if out:
                await _send(send, out, outcome, started)
            if done:
                break
    except (*UpstreamError, orjson.JSONDecodeError):
        pass
    finally:
        answer.response.release()

    usage = translator.usage or usage_estimate(body_bytes, produced)
    usage_record(outcome, usage, answer.deployment)
    if done:
        tail = b"".join(translator.finish_events(usage))
    else:
        error = _interrupted(answer.deployment.provider)
        outcome.status, outcome.error_type = 502, error.code or "upstream_error"
        tail = _anthropic_error_event(error)
    await send({"type": "http.response.body", "body": tail, "more_body": False})


async def relay_messages_native(
    send: Send,
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: Headers,
    started: float,
) -> None:
    """An Anthropic-protocol stream to an Anthropic client: relayed as it comes; only the
    events that carry usage, the end or an error are decoded."""
    usage: Usage | None = None
    produced = 0
    done = False
    error: GatewayError | None = None
    await _start(send, headers)
    try:
        async for batch in sse_events(answer):
            out = []
            for name, data in batch:
                produced += 1
                if name in (b"message_start", b"message_delta"):
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

    usage_record(outcome, usage or usage_estimate(body_bytes, produced), answer.deployment)
    tail = b""
    if not done:
        if error is None:
            error = _interrupted(answer.deployment.provider)
            tail = _anthropic_error_event(error)  # the provider's own error event was relayed
        outcome.status, outcome.error_type = 502, error.code or "upstream_error"
    await send({"type": "http.response.body", "body": tail, "more_body": False})
