"""``streamGenerateContent``: the answer as a series of whole GenerateContentResponse
chunks, sent as SSE with ``alt=sse`` and without it as one JSON array written piece by
piece; ``chunk_delay`` and ``cut_after`` act between chunks."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mockserver.common import WORD_PIECES, Scope, Send, query_param, split_reply
from mockserver.gemini.answer import (
    Answer,
    blocked,
    candidates_of,
    envelope,
    parts_of,
    prompt_usage,
)
from mockserver.gemini.errors import JSON, PRETTY
from mockserver.gemini.request import Request

_SSE = (b"content-type", b"text/event-stream")


def _chunks(req: Request, answer: Answer) -> list[dict[str, Any]]:
    """The stream's parts, one per chunk."""
    d = req.directive
    parts = parts_of(req, answer)
    chunks: list[dict[str, Any]] = []
    for part in parts:
        text = part.get("text")
        if text is None:
            # Gemini streams a function call whole, never in fragments.
            chunks.append(part)
            continue
        if text and not part.get("thought") and "chunks" in d and "reply" in d:
            pieces = split_reply(text, max(d["chunks"], 1))
        else:
            pieces = WORD_PIECES.findall(text) or [""]
        for k, piece in enumerate(pieces):
            chunk_part = {**part, "text": piece}
            if k and "thoughtSignature" in chunk_part:
                del chunk_part["thoughtSignature"]
            chunks.append(chunk_part)
    return chunks or [{"text": ""}]


async def send_stream(
    send: Send, scope: Scope, req: Request, answer: Answer, response_id: str, created: str
) -> None:
    d = req.directive
    sse = query_param(scope, "alt") == "sse"
    await send({"type": "http.response.start", "status": 200, "headers": [_SSE if sse else JSON]})

    def frame(payload: dict[str, Any], first: bool, last: bool) -> dict[str, Any]:
        data = envelope(req, response_id, created, payload)
        if sse:
            # Google's SSE separates events with CRLF pairs.
            body = b"data: " + orjson.dumps(data) + b"\r\n\r\n"
        else:
            body = (
                (b"[" if first else b",\r\n")
                + orjson.dumps(data, option=PRETTY)
                + (b"]" if last else b"")
            )
        return {"type": "http.response.body", "body": body, "more_body": not last}

    block = d.get("safety_block")
    if block is not None:
        await send(frame(blocked(req, answer, block), True, True))
        return
    chunks = _chunks(req, answer)
    chunk_delay, cut_after = d.get("chunk_delay"), d.get("cut_after")
    for k, part in enumerate(chunks):
        if cut_after is not None and k >= cut_after:
            # Return without more_body=False: the server drops the connection
            # mid-body, which is what a real upstream failure looks like.
            return
        if chunk_delay:
            await asyncio.sleep(chunk_delay)
        last = k == len(chunks) - 1
        payload = {
            "candidates": candidates_of(req, [part], answer.finish_reason if last else None),
            "usageMetadata": answer.usage if last else prompt_usage(answer),
        }
        # Even past the last chunk a cut stream never ends cleanly (nor closes its array).
        await send(frame(payload, k == 0, last and cut_after is None))
