"""Whole answers between Anthropic Messages and OpenAI Chat Completions, both ways: an OpenAI
chat completion as an Anthropic message (`/v1/messages` on an OpenAI-protocol model), an
Anthropic message as an OpenAI chat completion (`/v1/chat/completions` on an
Anthropic-protocol model), and an Anthropic error as the gateway's own."""

from __future__ import annotations

import time
from typing import Any

import orjson

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
from providers.translate.structured_output import JSON_TOOL

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
    refusal = message.get("refusal")
    if isinstance(refusal, str) and refusal:  # the model declined (structured outputs)
        content.append({"type": "text", "text": refusal})
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
        "stop_reason": "refusal"
        if isinstance(refusal, str) and refusal
        else FINISH_TO_STOP.get(choice.get("finish_reason") or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": anthropic_usage(usage),
    }


def message_to_chat(data: JSON, *, model: str, usage: Usage, json_tool: bool = False) -> JSON:
    """An Anthropic message → an OpenAI chat completion. `json_tool`: the request asked for
    its JSON answer through the answer tool (providers.translate.structured_output), whose
    call is the message's content."""
    text: list[str] = []
    thinking: list[str] = []
    calls: list[JSON] = []
    answer: str | None = None
    for block in data.get("content") or []:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text", ""))
        elif kind == "thinking":
            thinking.append(block.get("thinking", ""))
        elif kind == "tool_use" and json_tool and block.get("name") == JSON_TOOL:
            answer = orjson.dumps(block.get("input") or {}).decode()
        elif kind == "tool_use":
            calls.append(tool_call_from_use(block))
    if answer is not None:
        text = [answer]  # the answer is the JSON alone (a preamble would break its parsing)
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
                "finish_reason": _finish(data.get("stop_reason"), answer is not None and not calls),
                "logprobs": None,
            }
        ],
        "usage": openai_usage(usage),
    }


def _finish(stop_reason: str | None, answered: bool) -> str:
    """The finish reason: an answer given through the answer tool ends as a text one does."""
    if answered and stop_reason == "tool_use":
        return "stop"
    return STOP_TO_FINISH.get(stop_reason or "", "stop")


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
