"""One chat completion, from the checked body to the reply, whole or streamed. The answer
and its stream share one function's locals (reply, ids, usage, directive), so they stay
together here rather than split as in the Anthropic and Gemini mocks."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import orjson

from mockserver.common import (
    CHAT_DIRECTIVES,
    MOCK_PREFIX,
    WORD_PIECES,
    DirectiveError,
    DirectiveTypes,
    Message,
    Scope,
    Send,
    departure_guard,
    echo_headers,
    fault_scope,
    next_id,
    parse_directive,
    split_even,
    split_reply,
)
from mockserver.json_schema import json_reply
from mockserver.openai.errors import BadRequest, fault_body, send_body, send_json
from mockserver.openai.request import cache_walk, text_of, validate
from mockserver.prompt_cache import prompt_cache

_SSE = (b"content-type", b"text/event-stream")
_DONE = b"data: [DONE]\n\n"

# key -> accepted types. Unknown keys are rejected so a typo in a test fails
# loudly instead of silently testing the happy path.
# `refusal`: the model declines, as a structured-output answer does (`message.refusal`).
_DIRECTIVE_TYPES: DirectiveTypes = {**CHAT_DIRECTIVES, "refusal": (str,)}


def _parse_directive(text: str) -> dict[str, Any]:
    try:
        return parse_directive(text, _DIRECTIVE_TYPES)
    except DirectiveError as exc:
        raise BadRequest(str(exc), "messages") from None


def _usage(prompt: int, completion: int, cached: int, written: int | None) -> dict[str, Any]:
    details: dict[str, Any] = {"cached_tokens": cached, "audio_tokens": 0}
    if written is not None:  # said only for explicit caching (OpenRouter, OpenAI's own SDK types)
        details["cache_write_tokens"] = written
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": details,
        "completion_tokens_details": {
            "reasoning_tokens": 0,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


async def chat(scope: Scope, raw: bytes, send: Send, started: float) -> None:
    body, model, messages, n = validate(raw)

    prompt_tokens = 0
    last_user = ""
    for msg in messages:
        text = text_of(msg.get("content"))
        prompt_tokens += len(text.split()) + 3
        if msg.get("role") == "user":
            last_user = text

    d: dict[str, Any] = _parse_directive(last_user) if last_user.startswith(MOCK_PREFIX) else {}
    if d:
        d = fault_scope(d, model)
        send = departure_guard(d, send)
        if "delay" in d:
            await asyncio.sleep(d["delay"])
        status = d.get("status")
        if status is not None:
            extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
            await send_json(send, status, fault_body(status, d.get("message")), started, extra)
            return
        if d.get("malformed") and body.get("stream") is not True:
            # A 200 whose body is cut mid-JSON: what a crashing upstream proxy sends.
            await send_body(send, 200, b'{"id":"chatcmpl-broken","choices":[{"ind', started)
            return

    tool = d.get("tool_call")
    arguments = ""
    if tool is not None:
        args = tool.get("arguments", {})
        arguments = args if isinstance(args, str) else orjson.dumps(args).decode()
        reply = None
        completion_tokens = len(arguments.split()) + 5
    else:
        if d.get("echo_request"):
            reply = orjson.dumps({"headers": echo_headers(scope), "body": body}).decode()
        elif "reply" in d:
            reply = d["reply"]
        elif (body.get("response_format") or {}).get("type") in ("json_schema", "json_object"):
            schema = (body["response_format"].get("json_schema") or {}).get("schema")
            reply = json_reply(schema, "You said: " + last_user)
        elif "chunks" in d:
            reply = " ".join(f"w{i}" for i in range(d["chunks"]))
        else:
            reply = "You said: " + last_user
        completion_tokens = len(reply.split())

    refusal = d.get("refusal")
    if refusal is not None:
        reply, completion_tokens = None, len(refusal.split())

    cached, written = d.get("cached_tokens", 0), None
    cache = cache_walk(body, model) if b'"cache_control"' in raw else None
    if cache is not None and "cached_tokens" not in d:
        settled = prompt_cache.settle(cache)
        cached, written = settled.read, settled.write
    usage = _usage(
        d.get("prompt_tokens", prompt_tokens),
        d.get("completion_tokens", completion_tokens * n),
        cached,
        written,
    )
    finish_reason = d.get("finish_reason", "stop" if tool is None else "tool_calls")
    cid = f"chatcmpl-{next_id()}"
    created = int(time.time())
    call_ids = [f"call_{os.urandom(12).hex()}" for _ in range(n)] if tool is not None else []

    if body.get("stream") is not True:
        choices = []
        for i in range(n):
            message: dict[str, Any] = {
                "role": "assistant",
                "content": reply,
                "refusal": refusal,
                "annotations": [],
            }
            if tool is not None:
                fn = {"name": tool["name"], "arguments": arguments}
                message["tool_calls"] = [{"id": call_ids[i], "type": "function", "function": fn}]
            choices.append(
                {
                    "index": i,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                }
            )
        payload = {
            "id": cid,
            "object": "chat.completion",
            "created": created,
            "model": model,
            "choices": choices,
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }
        if d.get("cut_after") is not None:
            # Headers and half the body, then the connection drops: a cut answer.
            whole = orjson.dumps(payload)
            length = (b"content-length", str(len(whole)).encode())
            start = {"type": "http.response.start", "status": 200, "headers": [length]}
            await send(start)
            half = whole[: len(whole) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            return
        await send_json(send, 200, payload, started)
        return

    # Streaming. Every chunk shares the same envelope, so it is serialised
    # once and only the choice is encoded per chunk.
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    head = b"".join(
        (
            b'data: {"id":"',
            cid.encode(),
            b'","object":"chat.completion.chunk","created":',
            str(created).encode(),
            b',"model":',
            orjson.dumps(model),
            b',"service_tier":"default","system_fingerprint":"fp_mock","choices":[',
        )
    )
    tail = b'],"usage":null}\n\n' if include_usage else b"]}\n\n"

    def chunk(index: int, delta: dict[str, Any], finish: str | None = None) -> Message:
        choice = {
            "index": index,
            "delta": delta,
            "logprobs": None,
            "finish_reason": finish,
        }
        return {
            "type": "http.response.body",
            "body": head + orjson.dumps(choice) + tail,
            "more_body": True,
        }

    if tool is not None:
        pieces = split_even(arguments, 3 if len(arguments) >= 3 else 2)
    elif refusal is not None:
        pieces = WORD_PIECES.findall(refusal)
    elif reply and "chunks" in d and "reply" in d:
        pieces = split_reply(reply, max(d["chunks"], 1))
    else:
        pieces = WORD_PIECES.findall(reply or "")

    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                _SSE,
                (b"x-request-id", f"req_{next_id()}".encode()),
                (
                    b"openai-processing-ms",
                    str(int((time.perf_counter() - started) * 1000)).encode(),
                ),
            ],
        }
    )
    for i in range(n):
        if tool is not None:
            fn = {"name": tool["name"], "arguments": ""}
            call = {"index": 0, "id": call_ids[i], "type": "function", "function": fn}
            first: dict[str, Any] = {
                "role": "assistant",
                "content": None,
                "tool_calls": [call],
                "refusal": None,
            }
        else:
            first = {"role": "assistant", "content": "", "refusal": None}
        if d.get("first_chunk_delay"):
            await asyncio.sleep(d["first_chunk_delay"])
        if d.get("malformed"):
            await send({"type": "http.response.body", "body": b"data: {not json\n\n"})
            return
        await send(chunk(i, first))

    chunk_delay = d.get("chunk_delay")
    cut_after = d.get("cut_after")
    for k, piece in enumerate(pieces):
        if cut_after is not None and k >= cut_after:
            break
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        if tool is not None:
            delta: dict[str, Any] = {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}
        else:
            delta = {"content" if refusal is None else "refusal": piece}
        for i in range(n):
            await send(chunk(i, delta))
    if cut_after is not None:
        # Return without more_body=False: the server drops the connection
        # mid-body, which is what a real upstream failure looks like.
        return

    if chunk_delay:
        await asyncio.sleep(chunk_delay)
    for i in range(n):
        await send(chunk(i, {}, finish_reason))
    if include_usage:
        usage_chunk = head + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"
        await send({"type": "http.response.body", "body": usage_chunk, "more_body": True})
    await send({"type": "http.response.body", "body": _DONE, "more_body": False})
