"""What Anthropic Messages and OpenAI Chat Completions say alike, in each one's words: stop
reasons and finish reasons, thinking budgets and reasoning efforts, text, tool calls and
message ids. Shared by the requests, answers and streams translated between the two
(providers.translate.messages_to_chat, chat_to_messages, anthropic_openai_answers,
anthropic_openai_streams)."""

from __future__ import annotations

from typing import Any

import orjson

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


def tool_input(raw: Any) -> Any:
    """A tool call's arguments (JSON text, or the object some providers send) as a tool_use
    block's input; {} when they are not JSON."""
    if isinstance(raw, dict):
        return raw
    try:
        return orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return {}


def message_id(openai_id: Any) -> str:
    raw = str(openai_id or "")
    return raw if raw.startswith("msg_") else "msg_" + raw.removeprefix("chatcmpl-")


def completion_id(anthropic_id: Any) -> str:
    return "chatcmpl-" + str(anthropic_id or "").removeprefix("msg_")
