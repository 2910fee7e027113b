"""Chat Completions → OpenAI's Responses API, the whole answer: a chat completion becomes a
Response object (and what the stream's events share with it: the Response's shape, its
status and usage, item ids)."""

from __future__ import annotations

import os
import time
from typing import Any

from core.usage import Usage

JSON = dict[str, Any]

FINISH_TO_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{os.urandom(12).hex()}"


def item_id(kind: str, response_id: str, n: int) -> str:
    """An output item's id: its kind, its response's id and its place, so that a reference
    to it finds its response (gateway.endpoints.responses_state)."""
    return f"{kind}_{response_id.removeprefix('resp_')}_{n}"


def responses_usage(usage: Usage) -> JSON:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cached_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


def response_shell(body: JSON, response_id: str, status: str, output: list[JSON]) -> JSON:
    """A Response object for the request `body`, its status and usage not yet final."""
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": body["model"],
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": body.get("previous_response_id"),
        "reasoning": {"effort": (body.get("reasoning") or {}).get("effort"), "summary": None},
        "store": body.get("store", True) is not False,
        "temperature": body.get("temperature", 1.0),
        "text": body.get("text") or {"format": {"type": "text"}},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": body.get("user"),
        "metadata": body.get("metadata") or {},
    }


def _message_item(text: str, id_: str, status: str = "completed") -> JSON:
    return {
        "type": "message",
        "id": id_,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": []}],
    }


def response_finish(response: JSON, finish: str | None, usage: Usage) -> None:
    incomplete = FINISH_TO_INCOMPLETE.get(finish or "")
    response["status"] = "incomplete" if incomplete else "completed"
    if incomplete:
        response["incomplete_details"] = {"reason": incomplete}
    response["usage"] = responses_usage(usage)


def chat_to_response(data: JSON, body: JSON, usage: Usage) -> JSON:
    """A chat completion → a Response object."""
    choice = (data.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[JSON] = []
    response_id = new_id("resp")
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    if isinstance(reasoning, str) and reasoning:
        output.append(
            {
                "type": "reasoning",
                "id": item_id("rs", response_id, len(output)),
                "summary": [{"type": "summary_text", "text": reasoning}],
            }
        )
    if message.get("content"):
        text = str(message["content"])
        output.append(_message_item(text, item_id("msg", response_id, len(output))))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            {
                "type": "function_call",
                "id": item_id("fc", response_id, len(output)),
                "call_id": call.get("id", ""),
                "name": function.get("name", ""),
                "arguments": function.get("arguments", ""),
                "status": "completed",
            }
        )
    response = response_shell(body, response_id, "completed", output)
    response_finish(response, choice.get("finish_reason"), usage)
    return response
