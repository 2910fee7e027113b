"""One request as a client makes it (raw httpx, both routes, stream or not) and what the
client saw: the status, the request id, the error's code and shape, the cost it was told,
how much of a stream it read, and whether it read the whole answer."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import httpx

ANTHROPIC_VERSION = "2023-06-01"


@dataclass
class Record:
    seq: int
    kind: str  # plain | fault | left | left-json | burst | cold
    account: str
    user_id: int
    route: str  # chat | messages
    model: str
    stream: bool
    include_usage: bool
    directive: str
    started: float  # seconds since the load began
    ended: float = 0.0
    status: int | None = None  # None: no answer reached the client
    request_id: str | None = None
    error_code: str | None = None  # OpenAI's error code (or type); Anthropic's error type
    error_message: str | None = None
    error_shaped: bool = True  # the error body is the route's shape, naming the request
    retry_after: str | None = None
    stream_error: str | None = None  # an error event inside a 200 stream
    complete: bool = False  # the whole answer was read
    told_cost: Decimal | None = None
    delivered: int = 0  # content events read
    planned: int = 0  # content events the upstream was told to send
    chunk_seconds: float = 0.0
    transport: str | None = None  # what ended the exchange early, if anything
    left: bool = False  # the client left on purpose


def request_parts(
    route: str, key: str, model: str, text: str, stream: bool, include_usage: bool
) -> tuple[str, dict[str, str], dict[str, Any]]:
    messages = [{"role": "user", "content": text}]
    if route == "messages":
        headers = {"x-api-key": key, "anthropic-version": ANTHROPIC_VERSION}
        body: dict[str, Any] = {"model": model, "max_tokens": 64, "messages": messages}
        if stream:
            body["stream"] = True
        return "/v1/messages", headers, body
    body = {"model": model, "max_tokens": 64, "messages": messages}
    if stream:
        body["stream"] = True
        if include_usage:
            body["stream_options"] = {"include_usage": True}
    return "/v1/chat/completions", {"authorization": f"Bearer {key}"}, body


def _error_of(rec: Record, raw: bytes) -> None:
    try:
        data = json.loads(raw)
    except ValueError:
        rec.error_shaped = False
        return
    error = data.get("error") if isinstance(data, dict) else None
    if not isinstance(error, dict) or not error.get("message"):
        rec.error_shaped = False
        return
    rec.error_message = str(error["message"])
    if rec.route == "messages":
        rec.error_code = error.get("type")
        rec.error_shaped = data.get("type") == "error" and data.get("request_id") == rec.request_id
    else:
        rec.error_code = error.get("code") or error.get("type")


class _StreamReader:
    """Reads SSE events as the route's protocol sends them."""

    def __init__(self, rec: Record) -> None:
        self.rec = rec
        self.event = ""
        self.done = False

    def line(self, line: str) -> None:
        if line.startswith("event:"):
            self.event = line[6:].strip()
            return
        if not line.startswith("data:"):
            return
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return
        data = json.loads(payload, parse_float=Decimal)  # the cost exactly as sent
        if self.rec.route == "messages":
            if self.event == "content_block_delta":
                self.rec.delivered += 1
            elif self.event == "message_stop":
                self.done = True
            elif self.event == "error":
                self.rec.stream_error = (data.get("error") or {}).get("type") or "error"
            return
        if "error" in data:
            error = data["error"] or {}
            self.rec.stream_error = error.get("code") or error.get("type") or "error"
            return
        for choice in data.get("choices") or ():
            if (choice.get("delta") or {}).get("content"):
                self.rec.delivered += 1
                break
        usage = data.get("usage")
        if isinstance(usage, dict) and "cost" in usage:
            self.rec.told_cost = Decimal(usage["cost"])


async def send(
    client: httpx.AsyncClient,
    base_url: str,
    rec: Record,
    key: str,
    text: str,
    t0: float,
    leave_after: int | None = None,
    leave_after_seconds: float | None = None,
) -> Record:
    """Makes the request; a client that leaves does so after `leave_after` content events
    (a stream) or `leave_after_seconds` (waiting for a whole answer)."""
    path, headers, body = request_parts(
        rec.route, key, rec.model, text, rec.stream, rec.include_usage
    )
    timeout = httpx.Timeout(30, connect=5)
    if leave_after_seconds is not None:
        timeout = httpx.Timeout(30, connect=5, read=leave_after_seconds)
    try:
        async with client.stream(
            "POST", base_url + path, json=body, headers=headers, timeout=timeout
        ) as response:
            rec.status = response.status_code
            rec.request_id = response.headers.get("x-request-id") or response.headers.get(
                "request-id"
            )
            rec.retry_after = response.headers.get("retry-after")
            if response.status_code != 200:
                _error_of(rec, await response.aread())
                rec.complete = True
            elif not rec.stream:
                raw = await response.aread()
                cost = response.headers.get("x-gatewayz-cost")
                rec.told_cost = Decimal(cost) if cost is not None else None
                json.loads(raw)  # a whole JSON answer
                rec.complete = True
            else:
                reader = _StreamReader(rec)
                async for line in response.aiter_lines():
                    reader.line(line)
                    if leave_after is not None and rec.delivered >= leave_after:
                        rec.left = True
                        break  # leaving the block closes the connection mid-stream
                rec.complete = not rec.left and (reader.done or rec.stream_error is not None)
    except httpx.ReadTimeout:
        if leave_after_seconds is not None and rec.status is None:
            rec.left = True  # the client gave up waiting for the answer, on purpose
        else:
            rec.transport = "ReadTimeout"
    except (httpx.TransportError, ValueError) as exc:
        rec.transport = type(exc).__name__
    rec.ended = time.monotonic() - t0
    return rec
