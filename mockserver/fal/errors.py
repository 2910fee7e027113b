"""Fal's error shape: ``FalError`` answered as ``{"detail": …}`` with ``x-fal-retryable``, the
422 ``{loc, msg, type}`` list of input validation, the JSON reply, and the directive's fault
(``delay``, ``status``) raised as a ``FalError``. It stands apart so the request checks, the
generation and the queue can raise and answer without importing the app that catches it."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mockserver.common import Send, send_bytes

_JSON = (b"content-type", b"application/json")


class FalError(Exception):
    def __init__(
        self, status: int, detail: object, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(str(detail))
        self.status, self.detail, self.headers = status, detail, headers or []


def validation(loc: str, msg: str, type_: str) -> FalError:
    return FalError(422, [{"loc": ["body", loc], "msg": msg, "type": type_}])


async def send_json(
    send: Send, status: int, payload: object, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send_bytes(send, status, orjson.dumps(payload), [_JSON, *(extra or [])])


async def send_error(send: Send, exc: FalError) -> None:
    # Fal marks what may succeed if sent again.
    retryable = b"true" if exc.status in (429, 503, 504) or exc.status >= 500 else b"false"
    await send_json(
        send, exc.status, {"detail": exc.detail}, [(b"x-fal-retryable", retryable), *exc.headers]
    )


async def fault(d: dict[str, Any]) -> None:
    """Applies ``delay`` and ``status`` (as a raised FalError)."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is not None:
        extra = [(b"retry-after", str(d["retry_after"]).encode())] if "retry_after" in d else []
        raise FalError(status, d.get("message", f"mock fault {status}"), extra)
