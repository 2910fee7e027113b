"""An answer as the Messages API streams it: server-sent events in the documented order.
The directives that break a stream (``chunk_delay``, ``cut_after``, ``stream_error``) act
here, since they are about where in that sequence it breaks."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mockserver.anthropic.answer import Answer, message_of
from mockserver.anthropic.content import signature_of
from mockserver.anthropic.errors import request_id
from mockserver.anthropic.request import Request
from mockserver.common import WORD_PIECES, Send, departure_guard, split_even, split_reply

_SSE = (b"content-type", b"text/event-stream; charset=utf-8")


def _event(name: str, payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "http.response.body",
        "body": b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n",
        "more_body": True,
    }


def _deltas(
    req: Request, answer: Answer
) -> list[tuple[int, dict[str, Any] | None, dict[str, Any]]]:
    """The stream's content as (block index, block to start or None, delta) steps;
    a step with an empty delta closes its block."""
    d = req.directive
    steps: list[tuple[int, dict[str, Any] | None, dict[str, Any]]] = []
    index = 0
    if answer.thinking is not None:
        steps.append((index, {"type": "thinking", "thinking": "", "signature": ""}, {}))
        for piece in WORD_PIECES.findall(answer.thinking):
            steps.append((index, None, {"type": "thinking_delta", "thinking": piece}))
        steps.append(
            (index, None, {"type": "signature_delta", "signature": signature_of(answer.thinking)})
        )
        index += 1
    if answer.text is not None:
        steps.append((index, {"type": "text", "text": ""}, {}))
        if answer.text and "chunks" in d and "reply" in d:
            pieces = split_reply(answer.text, max(d["chunks"], 1))
        else:
            pieces = WORD_PIECES.findall(answer.text)
        for piece in pieces:
            steps.append((index, None, {"type": "text_delta", "text": piece}))
        index += 1
    if answer.tool is not None:
        tid, name, _, args_json = answer.tool
        steps.append((index, {"type": "tool_use", "id": tid, "name": name, "input": {}}, {}))
        pieces = ["", *split_even(args_json, 3 if len(args_json) >= 3 else 1)]
        for piece in pieces:
            steps.append((index, None, {"type": "input_json_delta", "partial_json": piece}))
    return steps


async def send_stream(send: Send, req: Request, answer: Answer) -> None:
    d = req.directive
    send = departure_guard(d, send)
    rid = request_id()
    headers = [_SSE, (b"request-id", rid.encode()), (b"cache-control", b"no-cache")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    usage = answer.usage
    start_usage = {**usage, "output_tokens": 1}
    start = message_of(req, answer, [], start_usage)
    start["stop_reason"] = start["stop_sequence"] = None
    await send(_event("message_start", {"type": "message_start", "message": start}))

    chunk_delay, cut_after = d.get("chunk_delay"), d.get("cut_after")
    stream_error, error_after = d.get("stream_error"), d.get("error_after", 0)
    sent, pinged, open_block = 0, False, -1
    for index, block, delta in _deltas(req, answer):
        if block is not None:
            if open_block >= 0:
                await send(
                    _event(
                        "content_block_stop", {"type": "content_block_stop", "index": open_block}
                    )
                )
            await send(
                _event(
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": block},
                )
            )
            open_block = index
            if not pinged:
                await send(_event("ping", {"type": "ping"}))
                pinged = True
            continue
        if stream_error is not None and sent >= error_after:
            break
        if cut_after is not None and sent >= cut_after:
            # Return without more_body=False: the server drops the connection
            # mid-body, which is what a real upstream failure looks like.
            return
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        await send(
            _event(
                "content_block_delta",
                {"type": "content_block_delta", "index": index, "delta": delta},
            )
        )
        sent += 1
    if stream_error is not None:
        message = d.get("message", f"mock fault {stream_error}")
        error = {
            "type": "error",
            "error": {"type": stream_error, "message": message},
            "request_id": rid,
        }
        last = _event("error", error)
        await send({**last, "more_body": False})
        return
    if cut_after is not None:
        # Even past the last delta: a cut stream never ends cleanly.
        return
    if open_block >= 0:
        await send(
            _event("content_block_stop", {"type": "content_block_stop", "index": open_block})
        )
    delta_usage = {
        k: usage[k]
        for k in (
            "input_tokens",
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "output_tokens",
        )
    }
    message_delta = {
        "type": "message_delta",
        "delta": {"stop_reason": answer.stop_reason, "stop_sequence": answer.stop_sequence},
        "usage": delta_usage,
    }
    await send(_event("message_delta", message_delta))
    last = _event("message_stop", {"type": "message_stop"})
    await send({**last, "more_body": False})
