"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, responses and streams, both ways.

The one place where the two protocols meet. `/v1/messages` on a model served over the OpenAI
protocol goes request → `messages_to_chat`, response ← `chat_to_message`, stream ←
`ChatChunksToMessageEvents`; `/v1/chat/completions` on a model served over the Anthropic
protocol goes request → `chat_to_messages`, response ← `message_to_chat`, stream ←
`MessageEventsToChatChunks`.

Usage maps exactly: Anthropic's `input_tokens` excludes the prompt tokens read from or
written to the cache, OpenAI's `prompt_tokens` includes them (`cached_tokens` says how many
were read).

What has no counterpart is refused with a 400 that names it, never dropped silently when it
would change the answer (`n` > 1, `logprobs`, `response_format` to Anthropic; document
blocks to OpenAI). Thinking blocks in the history are dropped towards OpenAI-protocol
providers (they have no field for them). Prompt-cache marks (`cache_control`) follow
providers.translate.cache_control.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from core.errors import GatewayError, bad_request
from core.usage import Usage
from providers.adapters.openai import usage_read
from providers.translate.cache_control import (
    MARK,
    has_marks,
    marked,
    system_blocks,
    system_to_openai,
    text_parts,
    tool_message_mark,
    tool_result_content,
)
from providers.upstream_errors import UpstreamFailure

JSON = dict[str, Any]

# Anthropic's thinking budget from OpenAI's reasoning effort, and back (the nearest effort).
EFFORT_BUDGET = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}

STOP_TO_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "pause_turn": "stop",
    "refusal": "content_filter",
}
FINISH_TO_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def _effort(budget: int) -> str:
    for effort, ceiling in EFFORT_BUDGET.items():
        if budget <= ceiling:
            return effort
    return "high"


def text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return ""


def tool_call_from_use(block: JSON) -> JSON:
    """An Anthropic tool_use block as an OpenAI tool call."""
    return {
        "id": block.get("id", ""),
        "type": "function",
        "function": {
            "name": block.get("name", ""),
            "arguments": orjson.dumps(block.get("input") or {}).decode(),
        },
    }


def _json_loads(raw: Any) -> Any:
    if isinstance(raw, dict):
        return raw
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}


# --- Anthropic request → OpenAI request -------------------------------------------------


def _image_to_openai(block: JSON, where: str) -> JSON:
    source = block.get("source") or {}
    if source.get("type") == "base64":
        url = f"data:{source.get('media_type', 'image/png')};base64,{source.get('data', '')}"
    elif source.get("type") == "url":
        url = source.get("url", "")
    else:
        raise bad_request(f"{where}: unsupported image source.", param=where)
    return {"type": "image_url", "image_url": {"url": url}}


def _user_to_openai(content: Any, where: str, keep: bool) -> list[JSON]:
    """One Anthropic user turn → OpenAI messages (tool results become `tool` messages);
    `keep`: whether cache marks are kept."""
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    messages: list[JSON] = []
    parts: list[JSON] = []
    for j, block in enumerate(content):
        kind, at = block.get("type"), f"{where}.content[{j}]"
        if kind == "text":
            parts.append(marked({"type": "text", "text": block.get("text", "")}, block, at, keep))
        elif kind == "image":
            parts.append(marked(_image_to_openai(block, at), block, at, keep))
        elif kind == "tool_result":
            result = block.get("content", "")
            text = text_of(result)
            if block.get("is_error"):
                text = f"Error: {text}"
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": block.get("tool_use_id", ""),
                    "content": tool_result_content(block, text, at, keep),
                }
            )
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' blocks cannot be sent to this model's provider.",
                param=f"{where}.content[{j}]",
            )
    if parts:
        if all(p["type"] == "text" for p in parts) and not has_marks(parts):
            messages.append({"role": "user", "content": "".join(p["text"] for p in parts)})
        else:
            messages.append({"role": "user", "content": parts})
    return messages


def _assistant_to_openai(content: Any, where: str, keep: bool) -> JSON:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    text: list[str] = []
    calls: list[JSON] = []
    for block in content:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "tool_use":
            calls.append(tool_call_from_use(block))
        # thinking / redacted_thinking: no OpenAI field carries them back.
    message: JSON = {"role": "assistant", "content": "".join(text) or None}
    if keep and any(MARK in b for b in content if b.get("type") == "text"):
        message["content"] = text_parts(content, where)
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_choice_to_openai(choice: JSON, body: JSON) -> Any:
    kind = choice.get("type")
    if choice.get("disable_parallel_tool_use"):
        body["parallel_tool_calls"] = False
    if kind == "any":
        return "required"
    if kind == "tool":
        return {"type": "function", "function": {"name": choice.get("name", "")}}
    return kind or "auto"  # auto | none


def messages_to_chat(body: JSON, *, reasoning: bool, cache_control: bool = False) -> JSON:
    """An Anthropic Messages request → an OpenAI chat completion request.

    `reasoning`: whether the model takes a reasoning effort (else `thinking` is not sent);
    `cache_control`: whether the provider takes cache marks (else they are dropped)."""
    keep = cache_control
    messages: list[JSON] = []
    system = body.get("system")
    if system:
        messages.append(system_to_openai(system, text_of(system), keep))
    for i, message in enumerate(body["messages"]):
        where = f"messages[{i}]"
        if message["role"] == "user":
            messages.extend(_user_to_openai(message.get("content", ""), where, keep))
        else:
            messages.append(_assistant_to_openai(message.get("content", ""), where, keep))
    chat: JSON = {"model": body["model"], "messages": messages, "max_tokens": body["max_tokens"]}
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            chat[name] = body[name]
    if body.get("stop_sequences"):
        chat["stop"] = body["stop_sequences"]
    user = (body.get("metadata") or {}).get("user_id")
    if user:
        chat["user"] = user
    if body.get("tools"):
        chat["tools"] = [
            marked(
                {
                    "type": "function",
                    "function": {
                        "name": t.get("name", ""),
                        "description": t.get("description", ""),
                        "parameters": t.get("input_schema") or {"type": "object"},
                    },
                },
                t,
                f"tools[{i}]",
                keep,
            )
            for i, t in enumerate(body["tools"])
        ]
    if body.get("tool_choice"):
        chat["tool_choice"] = _tool_choice_to_openai(body["tool_choice"], chat)
    thinking = body.get("thinking") or {}
    if reasoning and thinking.get("type") == "enabled":
        chat["reasoning_effort"] = _effort(int(thinking.get("budget_tokens") or 0))
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    return chat


# --- OpenAI response → Anthropic response -----------------------------------------------


def anthropic_usage(usage: Usage) -> JSON:
    written_1h = min(usage.cache_write_1h_tokens, usage.cache_write_tokens)
    return {
        "input_tokens": usage.prompt_tokens - usage.cached_tokens - usage.cache_write_tokens,
        "output_tokens": usage.completion_tokens,
        "cache_read_input_tokens": usage.cached_tokens,
        "cache_creation_input_tokens": usage.cache_write_tokens,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens - written_1h,
            "ephemeral_1h_input_tokens": written_1h,
        },
    }


def message_id(openai_id: Any) -> str:
    raw = str(openai_id or "")
    return raw if raw.startswith("msg_") else "msg_" + raw.removeprefix("chatcmpl-")


def chat_to_message(data: JSON, *, model: str, usage: Usage) -> JSON:
    """An OpenAI chat completion → an Anthropic message (the first choice)."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[JSON] = []
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": text_of(message["content"])})
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        content.append(
            {
                "type": "tool_use",
                "id": call.get("id", ""),
                "name": function.get("name", ""),
                "input": _json_loads(function.get("arguments")),
            }
        )
    return {
        "id": message_id(data.get("id")),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


# --- OpenAI stream → Anthropic stream ---------------------------------------------------


def sse(event: str, data: JSON) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class ChatChunksToMessageEvents:
    """Feeds on OpenAI chat completion chunks, emits Anthropic stream events (as SSE bytes)."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.started = False
        self.block: str | None = None  # the open block's type: text | thinking | tool_use
        self.index = -1
        self.tool_index: int | None = None  # the open tool_use block's OpenAI tool index
        self.tool_id: str | None = None  # ...and its call id
        self.finish: str | None = None
        self.usage: Usage | None = None

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
            # OpenAI streams tell usage only at the end: message_delta carries the figures.
            "usage": {"input_tokens": 0, "output_tokens": 0},
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
        stop_reason = FINISH_TO_STOP.get(self.finish or "stop", "end_turn")
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


# --- OpenAI request → Anthropic request -------------------------------------------------


def _image_to_anthropic(part: JSON, where: str) -> JSON:
    url = str((part.get("image_url") or {}).get("url", ""))
    if url.startswith("data:"):
        header, _, data = url.partition(",")
        media_type = header[5:].split(";")[0] or "image/png"
        source = {"type": "base64", "media_type": media_type, "data": data}
        return {"type": "image", "source": source}
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    raise bad_request(f"{where}: an image must be a data: or https: URL.", param=where)


def _content_to_anthropic(content: Any, where: str) -> list[JSON]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[JSON] = []
    for j, part in enumerate(content or []):
        kind, at = part.get("type"), f"{where}.content[{j}]"
        if kind == "text":
            blocks.append(marked({"type": "text", "text": part.get("text", "")}, part, at))
        elif kind == "image_url":
            blocks.append(marked(_image_to_anthropic(part, at), part, at))
        else:
            raise bad_request(
                f"{where}.content[{j}]: '{kind}' parts cannot be sent to this model's provider.",
                param=f"{where}.content[{j}]",
            )
    return blocks


def _append(messages: list[JSON], role: str, blocks: list[JSON]) -> None:
    """Anthropic wants user and assistant turns to alternate: same-role turns merge."""
    if messages and messages[-1]["role"] == role:
        messages[-1]["content"].extend(blocks)
    else:
        messages.append({"role": role, "content": blocks})


UNSUPPORTED_BY_ANTHROPIC = ("logprobs", "top_logprobs", "response_format", "logit_bias")


def chat_to_messages(body: JSON, *, upstream_model: str, max_tokens: int) -> JSON:
    """An OpenAI chat completion request → an Anthropic Messages request."""
    if int(body.get("n") or 1) > 1:
        raise bad_request(
            "'n' greater than 1 is not supported by this model's provider.", param="n"
        )
    for name in UNSUPPORTED_BY_ANTHROPIC:
        if body.get(name) not in (None, False) and not (
            name == "response_format" and (body[name] or {}).get("type") == "text"
        ):
            raise bad_request(f"'{name}' is not supported by this model's provider.", param=name)
    system: list[str] = []
    system_parts: list[tuple[int, Any]] = []  # (index, content): for cache marks
    messages: list[JSON] = []
    for i, message in enumerate(body["messages"]):
        role, where = message["role"], f"messages[{i}]"
        if role in ("system", "developer"):
            system.append(text_of(message.get("content")))
            system_parts.append((i, message.get("content")))
        elif role == "user":
            _append(messages, "user", _content_to_anthropic(message.get("content"), where))
        elif role == "assistant":
            blocks = _content_to_anthropic(message.get("content"), where)
            for call in message.get("tool_calls") or []:
                function = call.get("function") or {}
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call.get("id", ""),
                        "name": function.get("name", ""),
                        "input": _json_loads(function.get("arguments")),
                    }
                )
            _append(messages, "assistant", blocks)
        elif role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id", ""),
                "content": text_of(message.get("content")),
            }
            mark = tool_message_mark(message.get("content"), where)
            if mark is not None:
                result[MARK] = mark
            _append(messages, "user", [result])
        else:
            raise bad_request(f"{where}: unknown role '{role}'.", param=f"{where}.role")
    out: JSON = {"model": upstream_model, "messages": messages, "max_tokens": max_tokens}
    marked_system = system_blocks(system_parts)
    if marked_system:
        out["system"] = marked_system
    elif system:
        out["system"] = "\n\n".join(system)
    for name in ("temperature", "top_p", "top_k"):
        if body.get(name) is not None:
            out[name] = body[name]
    stop = body.get("stop")
    if stop:
        out["stop_sequences"] = [stop] if isinstance(stop, str) else list(stop)
    if body.get("user"):
        out["metadata"] = {"user_id": str(body["user"])}
    if body.get("tools"):
        out["tools"] = [
            marked(
                {
                    "name": (t.get("function") or {}).get("name", ""),
                    "description": (t.get("function") or {}).get("description", ""),
                    "input_schema": (t.get("function") or {}).get("parameters")
                    or {"type": "object", "properties": {}},
                },
                t,
                f"tools[{i}]",
            )
            for i, t in enumerate(body["tools"])
        ]
    choice = body.get("tool_choice")
    if choice is not None:
        if choice == "required":
            out["tool_choice"] = {"type": "any"}
        elif isinstance(choice, dict):
            name = (choice.get("function") or {}).get("name", "")
            out["tool_choice"] = {"type": "tool", "name": name}
        else:
            out["tool_choice"] = {"type": choice}
    if body.get("parallel_tool_calls") is False and body.get("tools"):
        out.setdefault("tool_choice", {"type": "auto"})["disable_parallel_tool_use"] = True
    effort = body.get("reasoning_effort")
    # Mid tool loop, Anthropic wants the assistant's turn to start with its thinking block,
    # which chat history cannot carry back: thinking waits for the next user turn.
    in_tool_loop = (
        bool(messages)
        and messages[-1]["role"] == "user"
        and any(block.get("type") == "tool_result" for block in messages[-1]["content"])
    )
    if effort in EFFORT_BUDGET and not in_tool_loop:
        budget = min(EFFORT_BUDGET[effort], max_tokens - 1)
        if budget >= 1024:  # Anthropic's minimum budget
            out["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body.get("stream"):
        out["stream"] = True
    return out


# --- Anthropic response → OpenAI response -----------------------------------------------


def usage_from_anthropic(usage: Any, *, previous: Usage | None = None) -> Usage | None:
    """Anthropic usage (whole, or a message_delta's update on `previous`) → our Usage."""
    if not isinstance(usage, dict):
        return None
    base = previous or Usage()
    read = usage.get("cache_read_input_tokens")
    written = usage.get("cache_creation_input_tokens")
    fresh = usage.get("input_tokens")
    cached = int(read) if read is not None else base.cached_tokens
    cache_write = int(written) if written is not None else base.cache_write_tokens
    # How much of the write is kept for an hour: priced apart (billing.pricing).
    by_ttl = usage.get("cache_creation")
    written_1h = by_ttl.get("ephemeral_1h_input_tokens") if isinstance(by_ttl, dict) else None
    cache_write_1h = int(written_1h) if written_1h is not None else base.cache_write_1h_tokens
    uncached = (
        int(fresh)
        if fresh is not None
        else base.prompt_tokens - base.cached_tokens - base.cache_write_tokens
    )
    output = usage.get("output_tokens")
    return Usage(
        prompt_tokens=uncached + cached + cache_write,
        completion_tokens=int(output) if output is not None else base.completion_tokens,
        cached_tokens=cached,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=cache_write_1h,
    )


def openai_usage(usage: Usage) -> JSON:
    details: JSON = {"cached_tokens": usage.cached_tokens}
    if usage.cache_write_tokens:
        details["cache_write_tokens"] = usage.cache_write_tokens  # OpenRouter's name for it
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
        "prompt_tokens_details": details,
    }


def completion_id(anthropic_id: Any) -> str:
    return "chatcmpl-" + str(anthropic_id or "").removeprefix("msg_")


def message_to_chat(data: JSON, *, model: str, usage: Usage) -> JSON:
    """An Anthropic message → an OpenAI chat completion."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use":
            calls.append(tool_call_from_use(block))
    message: JSON = {"role": "assistant", "content": "".join(text) if text or not calls else None}
    if thinking:
        message["reasoning_content"] = "".join(thinking)
    if calls:
        message["tool_calls"] = calls
    return {
        "id": completion_id(data.get("id")),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": STOP_TO_FINISH.get(data.get("stop_reason") or "", "stop"),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
    }


# --- Anthropic stream → OpenAI stream ---------------------------------------------------


class MessageEventsToChatChunks:
    """Feeds on Anthropic stream events, emits OpenAI chat completion chunks (dicts)."""

    def __init__(self, model: str) -> None:
        self.model = model
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
            self.blocks[int(event.get("index", 0))] = block.get("type", "")
            if block.get("type") == "tool_use":
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


def upstream_error(error: JSON, provider: str) -> GatewayError:
    """An Anthropic `error` event/body from the provider, as the gateway's own error."""
    said = "is overloaded" if error.get("type") == "overloaded_error" else "failed"
    return UpstreamFailure(
        502,
        f"{provider} {said} while answering (5xx).",
        type="server_error",
        code="upstream_error",
        detail=str(error.get("message") or "no message"),
    )
