"""Relaying streams whose provider speaks another protocol than the client, or the Anthropic
protocol natively: upstream SSE events are parsed one by one (the OpenAI → OpenAI fast path
in relay_stream.py never decodes them), translated in providers.translate, and sent in the
client's protocol. Every relay meters the stream, and a cut one ends with a well-formed
error event in the client's protocol and is billed for what was produced.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal
from typing import Any

import orjson

from core.errors import GatewayError, anthropic_error_body
from core.outcome import RequestOutcome
from core.usage import Usage
from gateway.http import SSE_HEADERS, Send
from gateway.relay_stream import (
    cut_stream_usage,
    model_renamer,
    stream_interrupted,
    usage_estimate,
    usage_record,
)
from gateway.upstream import UpstreamError
from gateway.upstream_attempt import UpstreamAnswer
from providers.adapters.openai import error_message, usage_read
from providers.translate.anthropic_openai_answers import message_to_chat, upstream_error
from providers.translate.anthropic_openai_streams import (
    ChatChunksToMessageEvents,
    MessageEventsToChatChunks,
)
from providers.translate.anthropic_openai_usage import usage_from_anthropic
from providers.translate.gemini_openai import GeminiToChatChunks, gemini_to_chat, gemini_usage
from providers.upstream_errors import UpstreamFailure, detail_keep

Headers = list[tuple[bytes, bytes]]


async def sse_events(answer: UpstreamAnswer) -> AsyncIterator[list[tuple[bytes, bytes]]]:
    """The upstream's SSE events as (event name, data) pairs, a batch per network read."""
    pending = b""
    name = b""
    data: list[bytes] = []
    async for block in answer.blocks():
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


async def _start(send: Send, headers: Headers) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": SSE_HEADERS + headers})


async def _send(send: Send, out: list[bytes], outcome: RequestOutcome, started: float) -> None:
    if outcome.ttft_ms is None:
        outcome.ttft_ms = (time.perf_counter() - started) * 1000
    await send({"type": "http.response.body", "body": b"".join(out), "more_body": True})


class Decoder:
    """An upstream stream, decoded into OpenAI chat completion chunks."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.produced = 0  # content pieces decoded: ~one token each, for a cut stream's bill

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        raise NotImplementedError

    def finished(self) -> bool:
        """Whether the upstream ended the stream the way its protocol ends a whole one."""
        raise NotImplementedError

    def stop_reading(self) -> bool:
        """Whether to stop reading now (the protocol's end marker was seen)."""
        return self.finished()

    def error(self) -> GatewayError | None:
        """An error the upstream reported in the stream, if any (ends the relay)."""
        return None

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        """The closing usage chunk for a chat client (translating decoders only: an OpenAI
        stream to a chat client goes through relay_stream, undecoded)."""
        raise NotImplementedError


class OpenAIDecoder(Decoder):
    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        if data == b"[DONE]":
            self.done = True
            return []
        chunk = orjson.loads(data)
        usage = usage_read(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        return [chunk]

    def finished(self) -> bool:
        return self.done


class AnthropicDecoder(Decoder):
    def __init__(self, model_id: str, provider: str) -> None:
        super().__init__()
        self.translator = MessageEventsToChatChunks(model_id)
        self.provider = provider

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        chunks = self.translator.feed(orjson.loads(data))
        self.usage = self.translator.usage
        return chunks

    def finished(self) -> bool:
        return self.translator.done

    def error(self) -> GatewayError | None:
        if self.translator.error is None:
            return None
        return upstream_error(self.translator.error, self.provider)

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        return self.translator.usage_chunk(usage)


class GeminiDecoder(Decoder):
    def __init__(self, model_id: str) -> None:
        super().__init__()
        self.translator = GeminiToChatChunks(model_id)

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        chunks = self.translator.feed(orjson.loads(data))
        self.usage = self.translator.usage
        return chunks

    def finished(self) -> bool:
        return self.translator.finished

    def stop_reading(self) -> bool:
        # Gemini has no end marker: a whole stream is one that closes after a finishReason.
        return False

    def error(self) -> GatewayError | None:
        return self.translator.error

    def usage_chunk(self, model_id: str, usage: Usage) -> dict[str, Any]:
        return self.translator.usage_chunk(usage)


def completion_from(
    data: dict[str, Any], answer: UpstreamAnswer, model_id: str, body_bytes: int, size: int
) -> tuple[dict[str, Any], Usage]:
    """A provider's whole (non-stream) answer as an OpenAI chat completion, with its usage
    (estimated from `size` bytes of answer if the provider gave none)."""
    protocol = answer.deployment.protocol
    if protocol == "anthropic":
        usage = usage_from_anthropic(data.get("usage")) or usage_estimate(body_bytes, size // 4)
        return message_to_chat(data, model=model_id, usage=usage), usage
    if protocol == "gemini":
        usage = gemini_usage(data.get("usageMetadata")) or usage_estimate(body_bytes, size // 4)
        return gemini_to_chat(data, model=model_id, usage=usage), usage
    if not isinstance(data.get("choices"), list) and data.get("error"):
        # Some OpenAI-compatible providers answer a failure with 200 and an error body.
        raise UpstreamFailure(
            502,
            f"{answer.deployment.provider} failed on this request (it answered 200 with an error).",
            type="server_error",
            code="upstream_error",
            detail=error_message(orjson.dumps(data)),
        )
    usage = usage_read(data.get("usage")) or usage_estimate(body_bytes, size // 4)
    data["model"] = model_id  # the model the client asked for; the provider's is a header
    return data, usage


def decoder_for(answer: UpstreamAnswer, model_id: str) -> Decoder:
    protocol = answer.deployment.protocol
    if protocol == "anthropic":
        return AnthropicDecoder(model_id, answer.deployment.provider)
    if protocol == "gemini":
        return GeminiDecoder(model_id)
    return OpenAIDecoder()


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
        async for batch in sse_events(answer):
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
    Cut: the one rule for cut streams (gateway.relay_stream.cut_stream_usage)."""
    if error is None:
        return usage or usage_estimate(body_bytes, produced)
    if error.status < 500:
        return Usage()
    return cut_stream_usage(usage, produced, body_bytes)


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


def _anthropic_error_event(error: GatewayError) -> bytes:
    return b"event: error\ndata: " + anthropic_error_body(error) + b"\n\n"


class MessagesEncoder(Encoder):
    def __init__(self, body: dict[str, Any]) -> None:
        self.events = ChatChunksToMessageEvents(body["model"])

    def feed(self, chunk: dict[str, Any]) -> list[bytes]:
        return self.events.feed(chunk)

    def finish(self, decoder: Decoder, usage: Usage, cost: Decimal) -> bytes:
        return b"".join(self.events.finish_events(usage))

    def fail(self, error: GatewayError) -> bytes:
        return _anthropic_error_event(error)


async def relay_translated(
    send: Send,
    encoder: Encoder,
    body: dict[str, Any],
    body_bytes: int,
    answer: UpstreamAnswer,
    outcome: RequestOutcome,
    headers: Headers,
    started: float,
) -> None:
    """A provider's stream, decoded to OpenAI chunks and encoded in the client's protocol."""
    decoder = decoder_for(answer, body["model"])
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


async def relay_messages_native(
    send: Send,
    model: str,
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
    renamed = model_renamer(model)
    await _start(send, headers)
    try:
        async for batch in sse_events(answer):
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
        tail = _anthropic_error_event(error)  # a provider's own error event was relayed as is
    usage_record(outcome, billed_usage(usage, error, produced, body_bytes), answer.deployment)
    if error is not None:
        outcome.status, outcome.error_type = 502, error.code or "upstream_error"
        detail_keep(outcome.attempts, error)
    await send({"type": "http.response.body", "body": tail, "more_body": False})
