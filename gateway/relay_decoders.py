"""An upstream answer in its provider's protocol (OpenAI, Anthropic, Gemini), decoded into
OpenAI chat: a whole answer into a chat completion (`completion_from`), a stream into chat
completion chunks (a Decoder per protocol, fed the upstream's SSE events one by one).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson

from core.errors import GatewayError
from core.usage import Usage
from gateway.relay_stream import usage_estimate
from gateway.upstream_attempt import UpstreamAnswer
from providers.adapters.openai import error_message, usage_read
from providers.translate.anthropic_openai_answers import message_to_chat, upstream_error
from providers.translate.anthropic_openai_streams import MessageEventsToChatChunks
from providers.translate.anthropic_openai_usage import usage_from_anthropic
from providers.translate.gemini_openai import GeminiToChatChunks, gemini_to_chat, gemini_usage
from providers.upstream_errors import UpstreamFailure


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
