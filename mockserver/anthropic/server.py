"""The ASGI app: routes, auth and the ``anthropic-version`` header are checked before the
body is read, then come the directive's fault and the answer, whole or streamed. Every
``ApiError`` raised on the way becomes the API's error response here."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson

from mockserver.anthropic.answer import answer_of, blocks, message_of
from mockserver.anthropic.errors import JSON, ApiError, invalid, request_id, send_error
from mockserver.anthropic.request import parse_request
from mockserver.anthropic.stream import send_stream
from mockserver.common import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    header,
    key_matches,
    read_body,
    request_receive,
    send_bytes,
)

MODELS = (
    ("echo", "Echo", "2025-01-01T00:00:00Z"),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "2025-09-29T00:00:00Z"),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "2025-10-15T00:00:00Z"),
)
_MODELS_BODY = orjson.dumps(
    {
        "data": [
            {
                "type": "model",
                "id": m,
                "display_name": name,
                "created_at": created,
                "lifecycle": "active",
            }
            for m, name, created in MODELS
        ],
        "has_more": False,
        "first_id": MODELS[0][0],
        "last_id": MODELS[-1][0],
    }
)


async def _send_json(send: Send, body: bytes) -> None:
    await send_bytes(send, 200, body, [JSON, (b"request-id", request_id().encode())])


async def _fault(send: Send, d: dict[str, Any]) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    await send_error(
        send, ApiError(status, d.get("message", f"mock fault {status}")), d.get("retry_after")
    )
    return True


async def messages(scope: Scope, raw: bytes, send: Send) -> None:
    req = parse_request(raw)
    if await _fault(send, req.directive):
        return
    answer = answer_of(req, scope)
    if req.body.get("stream") is True:
        await send_stream(send, req, answer)
        return
    await _send_json(send, orjson.dumps(message_of(req, answer, blocks(answer), answer.usage)))


async def count_tokens(raw: bytes, send: Send) -> None:
    req = parse_request(raw, count_only=True)
    if await _fault(send, req.directive):
        return
    tokens = req.directive.get("prompt_tokens", req.prompt_tokens)
    await _send_json(send, orjson.dumps({"input_tokens": tokens}))


_ROUTES = {"/v1/messages": b"POST", "/v1/messages/count_tokens": b"POST", "/v1/models": b"GET"}


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only that key is let in."""
    expected = api_key.encode() if api_key else None

    def auth_error(scope: Scope) -> str | None:
        token = header(scope, b"x-api-key")
        if not token:
            bearer = header(scope, b"authorization")
            if bearer is not None and bearer[:7].lower() == b"bearer ":
                token = bearer[7:].strip()
        if not token:
            return "x-api-key header is required"
        if not key_matches(token, expected):
            return "invalid x-api-key"
        return None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        allowed = _ROUTES.get(path)
        if allowed is None:
            await send_error(send, ApiError(404, f"Not found: {path}"))
            return
        if scope["method"].encode() != allowed:
            await send_error(send, ApiError(405, f"Method Not Allowed: {scope['method']} {path}"))
            return
        denied = auth_error(scope)
        if denied is not None:
            await send_error(send, ApiError(401, denied))
            return
        if header(scope, b"anthropic-version") is None:
            await send_error(send, invalid("anthropic-version: header is required"))
            return
        if path == "/v1/models":
            await _send_json(send, _MODELS_BODY)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        request_receive.set(receive)
        try:
            if path == "/v1/messages":
                await messages(scope, raw, send)
            else:
                await count_tokens(raw, send)
        except ApiError as exc:
            await send_error(send, exc)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app
