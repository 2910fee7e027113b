"""The deterministic answer to a request (content, stop reason, usage), made once and shared
by the JSON reply and the stream so both report the same figures."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import orjson

from mockserver.anthropic.content import signature_of
from mockserver.anthropic.errors import invalid
from mockserver.anthropic.request import Request
from mockserver.common import (
    DirectiveError,
    Scope,
    echo_headers,
    limit_text,
    next_id,
    tool_arguments,
    words,
)
from mockserver.json_schema import instance_of
from mockserver.prompt_cache import prompt_cache


@dataclass
class Answer:
    thinking: str | None
    text: str | None
    tool: tuple[str, str, dict[str, Any], str] | None  # id, name, input, input JSON
    stop_reason: str
    stop_sequence: str | None
    usage: dict[str, Any]


def answer_of(req: Request, scope: Scope) -> Answer:
    d = req.directive
    tool = None
    tool_call = d.get("tool_call")
    if tool_call is None and req.forced_tool is not None:
        # A forced tool is called with an input its schema accepts.
        schema = req.tool_schemas.get(req.forced_tool)
        tool_call = {"name": req.forced_tool, "arguments": instance_of(schema) or {}}
    if tool_call is not None and req.tool_choice != "none":
        try:
            args, args_json = tool_arguments(tool_call)
        except DirectiveError as exc:
            raise invalid(str(exc)) from None
        tool = (f"toolu_{os.urandom(12).hex()}", tool_call["name"], args, args_json)

    if d.get("echo_request"):
        text: str | None = orjson.dumps({"headers": echo_headers(scope), "body": req.body}).decode()
    elif "reply" in d:
        text = d["reply"]
    elif req.output_schema is not None:
        text = orjson.dumps(instance_of(req.output_schema)).decode()
    elif "chunks" in d:
        text = " ".join(f"w{i}" for i in range(d["chunks"]))
    else:
        text = "You said: " + req.last_user
    if tool is not None and "reply" not in d:
        text = None

    thinking = None
    if req.thinking:
        thinking = d.get("thinking", "Thinking about: " + req.last_user)
    budget = req.max_tokens - (words(thinking) if thinking else 0)
    stop_reason, stop_sequence = "end_turn", None
    if thinking is not None and budget < 0:
        thinking, text, tool, stop_reason = (
            limit_text(thinking, (), req.max_tokens)[0],
            "",
            None,
            "max_tokens",
        )
    elif text is not None:
        text, hit = limit_text(text, req.stop_sequences, budget)
        if hit == "":
            stop_reason, tool = "max_tokens", None
        elif hit is not None:
            stop_reason, stop_sequence, tool = "stop_sequence", hit, None
    if tool is not None:
        stop_reason = "tool_use"

    output = (words(thinking) if thinking else 0) + (words(text) if text else 0)
    if tool is not None:
        output += words(tool[3]) + 5
    creation, read, creation_1h = d.get("cache_creation_tokens", 0), d.get("cached_tokens", 0), 0
    fresh = d.get("prompt_tokens", req.prompt_tokens)
    if req.cache is not None and not {"cache_creation_tokens", "cached_tokens"} & d.keys():
        # Marked blocks: the prompt cache decides (a directive's figures win, for tests).
        cached = prompt_cache.settle(req.cache)
        creation, read, creation_1h = cached.write, cached.read, cached.write_1h
        fresh = max(fresh - read - creation, 0)  # input_tokens leaves the cached part out
    usage = {
        "input_tokens": fresh,
        "cache_creation_input_tokens": creation,
        "cache_read_input_tokens": read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": creation - creation_1h,
            "ephemeral_1h_input_tokens": creation_1h,
        },
        "output_tokens": d.get("completion_tokens", output),
        "service_tier": "standard",
    }
    return Answer(thinking, text, tool, d.get("finish_reason", stop_reason), stop_sequence, usage)


def blocks(answer: Answer) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if answer.thinking is not None:
        blocks.append(
            {
                "type": "thinking",
                "thinking": answer.thinking,
                "signature": signature_of(answer.thinking),
            }
        )
    if answer.text is not None:
        blocks.append({"type": "text", "text": answer.text})
    if answer.tool is not None:
        tid, name, args, _ = answer.tool
        blocks.append({"type": "tool_use", "id": tid, "name": name, "input": args})
    return blocks


def message_of(
    req: Request, answer: Answer, content: list[dict[str, Any]], usage: dict[str, Any]
) -> dict[str, Any]:
    return {
        "id": f"msg_{next_id()}",
        "type": "message",
        "role": "assistant",
        "model": req.model,
        "content": content,
        "stop_reason": answer.stop_reason,
        "stop_sequence": answer.stop_sequence,
        "usage": usage,
    }
