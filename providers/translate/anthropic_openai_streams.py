"""Streams between Anthropic Messages and OpenAI Chat Completions, both ways: OpenAI chat
completion chunks as Anthropic stream events (`/v1/messages` on an OpenAI-protocol model),
Anthropic stream events as OpenAI chunks (`/v1/chat/completions` on an Anthropic-protocol
model)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from core.usage import Usage
from providers.protocols.openai import usage_read
from providers.translate.anthropic_openai_terms import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    completion_id,
    message_id,
)
from providers.translate.anthropic_openai_usage import (
    anthropic_usage,
    openai_usage,
    usage_from_anthropic,
)
from providers.translate.structured_output import JSON_TOOL

JSON = dict[str, Any]


# --- OpenAI stream → Anthropic stream ---------------------------------------------------


def sse(event: str, data: JSON) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ChatChunksToMessageEvents:
    """Feeds on OpenAI chat completion chunks, emits Anthropic stream events (as SSE bytes)."""

    def __init__(self, model: str, input_tokens: int = 0) -> None:
        self.model = model
        self.input_tokens = input_tokens  # the prompt's estimate, until the usage is known
        self.started = False
        self.block: str | None = None  # the open block's type: text | thinking | tool_use
        self.index = -1
        self.tool_index: int | None = None  # the open tool_use block's OpenAI tool index
        self.tool_id: str | None = None  # ...and its call id
        self.finish: str | None = None
        self.usage: Usage | None = None
        self.refused = False  # the model declined (an OpenAI `refusal`)

    def _start(self, chunk: JSON) -> Iterable[bytes]:
        self.started = True
        message: JSON = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # OpenAI streams tell usage only at the end: the prompt's estimate here (what
            # its hold was priced on; clients that read input tokens here get a figure), the
            # exact figures in message_delta's cumulative usage.
            "usage": {"input_tokens": self.input_tokens, "output_tokens": 0},
        }
        yield sse("message_start", {"type": "message_start", "message": message})
        yield sse("ping", {"type": "ping"})

    def _open(self, kind: str, block: JSON) -> Iterable[bytes]:
        yield from self._close()
        self.index += 1
        self.block = kind
        yield sse(
            "content_block_start",
            {"type": "content_block_start", "index": self.index, "content_block": block},
        )

    def _close(self) -> Iterable[bytes]:
        if self.block is not None:
            if self.block == "thinking":
                # A signature is part of Anthropic's thinking block; this provider gave none.
                yield self._delta({"type": "signature_delta", "signature": ""})
            yield sse("content_block_stop", {"type": "content_block_stop", "index": self.index})
            self.block = None
            self.tool_index = None

    def _delta(self, delta: JSON) -> bytes:
        return sse(
            "content_block_delta",
            {"type": "content_block_delta", "index": self.index, "delta": delta},
        )

    def feed(self, chunk: JSON) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            out.extend(self._start(chunk))
        usage = usage_read(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            reasoning = delta.get("reasoning_content") or delta.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                if self.block != "thinking":
                    out.extend(self._open("thinking", {"type": "thinking", "thinking": ""}))
                out.append(self._delta({"type": "thinking_delta", "thinking": reasoning}))
            text = delta.get("content")
            refusal = delta.get("refusal")
            if isinstance(refusal, str) and refusal:  # the model declined: said as text
                text, self.refused = refusal, True
            if isinstance(text, str) and text:
                if self.block != "text":
                    out.extend(self._open("text", {"type": "text", "text": ""}))
                out.append(self._delta({"type": "text_delta", "text": text}))
            for call in delta.get("tool_calls") or []:
                function = call.get("function") or {}
                new_id = call.get("id") and call["id"] != self.tool_id
                if self.block != "tool_use" or call.get("index", 0) != self.tool_index or new_id:
                    block = {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": {},
                    }
                    out.extend(self._open("tool_use", block))
                    self.tool_index = call.get("index", 0)
                    self.tool_id = call.get("id")
                arguments = function.get("arguments")
                if arguments and not isinstance(arguments, str):
                    arguments = orjson.dumps(arguments).decode()  # some providers send an object
                if arguments:
                    out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
            if choice.get("finish_reason"):
                self.finish = choice["finish_reason"]
        return out

    def finish_events(self, usage: Usage) -> list[bytes]:
        out: list[bytes] = []
        if not self.started:
            out.extend(self._start({}))
        out.extend(self._close())
        stop_reason = (
            "refusal" if self.refused else FINISH_TO_STOP.get(self.finish or "stop", "end_turn")
        )
        out.append(
            sse(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": anthropic_usage(usage),
                },
            )
        )
        out.append(sse("message_stop", {"type": "message_stop"}))
        return out


# --- Anthropic stream → OpenAI stream ---------------------------------------------------


class MessageEventsToChatChunks:
    """Feeds on Anthropic stream events, emits OpenAI chat completion chunks (dicts).
    `json_tool`: the answer tool's call is the content (providers.translate.structured_output)."""

    def __init__(self, model: str, json_tool: bool = False) -> None:
        self.model = model
        self.json_tool = json_tool
        self.answered = False  # the answer tool was called
        self.id = "chatcmpl-"
        self.created = int(time.time())
        self.usage: Usage | None = None
        self.tool_calls = -1  # index of the latest tool call
        self.blocks: dict[int, str] = {}  # content block index → type
        self.finish: str | None = None
        self.done = False
        self.error: JSON | None = None

    def _chunk(self, delta: JSON, finish: str | None = None) -> JSON:
        return {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
        }

    def feed(self, event: JSON) -> list[JSON]:
        kind = event.get("type")
        if kind == "message_start":
            message = event.get("message") or {}
            self.id = completion_id(message.get("id"))
            self.usage = usage_from_anthropic(message.get("usage"))
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.get("content_block") or {}
            kind = block.get("type", "")
            if kind == "tool_use" and self.json_tool and block.get("name") == JSON_TOOL:
                kind, self.answered = "answer", True  # its input streams as the content
            self.blocks[int(event.get("index", 0))] = kind
            if kind == "tool_use":
                self.tool_calls += 1
                call = {
                    "index": self.tool_calls,
                    "id": block.get("id", ""),
                    "type": "function",
                    "function": {"name": block.get("name", ""), "arguments": ""},
                }
                return [self._chunk({"tool_calls": [call]})]
            if block.get("type") == "text" and block.get("text"):
                return [self._chunk({"content": block["text"]})]
            return []
        if kind == "content_block_delta":
            delta = event.get("delta") or {}
            dtype = delta.get("type")
            if dtype == "text_delta":
                return [self._chunk({"content": delta.get("text", "")})]
            if dtype == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.get("thinking", "")})]
            if (
                dtype == "input_json_delta"
                and self.blocks.get(int(event.get("index", 0))) == "answer"
            ):
                return [self._chunk({"content": delta.get("partial_json", "")})]
            if dtype == "input_json_delta":
                call = {
                    "index": self.tool_calls,
                    "function": {"arguments": delta.get("partial_json", "")},
                }
                return [self._chunk({"tool_calls": [call]})]
            return []  # signature_delta, citations: no OpenAI counterpart
        if kind == "message_delta":
            self.usage = usage_from_anthropic(event.get("usage"), previous=self.usage)
            stop = (event.get("delta") or {}).get("stop_reason")
            if stop == "tool_use" and self.answered and self.tool_calls < 0:
                stop = "end_turn"  # answered through the answer tool: a text answer's end
            self.finish = STOP_TO_FINISH.get(stop or "", "stop")
            return [self._chunk({}, self.finish)]
        if kind == "message_stop":
            self.done = True
        elif kind == "error":
            self.error = event.get("error") or {}
        return []

    def usage_chunk(self, usage: Usage) -> JSON:
        chunk = self._chunk({})
        chunk["choices"] = []
        chunk["usage"] = openai_usage(usage)
        return chunk
