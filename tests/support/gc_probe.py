"""The inference workers' app (`config.asgi_inference`) with one route more, for the tests
only: `GET /__gc` runs a full collection and answers how many unreachable objects it found,
with the collector's settings (gateway.runtime.gc_tune)."""

from __future__ import annotations

import gc

import orjson

from config.asgi_inference import application as inference
from gateway.http import JSON_HEADERS, Receive, Scope, Send, send_bytes


async def application(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "http" and scope["path"] == "/__gc":
        found = gc.collect()
        reading = {
            "unreachable": found,
            "frozen": gc.get_freeze_count(),
            "young_threshold": gc.get_threshold()[0],
        }
        await send_bytes(send, 200, orjson.dumps(reading), JSON_HEADERS)
        return
    await inference(scope, receive, send)
