"""Whole answers between Anthropic Messages and OpenAI Chat Completions, both ways: an OpenAI
chat completion as an Anthropic message (`/v1/messages` on an OpenAI-protocol model), an
Anthropic message as an OpenAI chat completion (`/v1/chat/completions` on an
Anthropic-protocol model), and an Anthropic error as the gateway's own."""

from __future__ import annotations

import time
from typing import Any

from core.errors import GatewayError, UpstreamFailure
from core.usage import Usage
from providers.translate.anthropic_openai_terms import (
    FINISH_TO_STOP,
    STOP_TO_FINISH,
    completion_id,
    message_id,
    text_of,
    tool_call_from_use,
    tool_input,
)
from providers.translate.anthropic_openai_usage import anthropic_usage, openai_usage

JSON = dict[str, Any]


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
                "input": tool_input(function.get("arguments")),
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
