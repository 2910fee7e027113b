"""The ASGI app: routes, ``/health``, the models list and Bearer auth, answered before the
body is read. ``app`` is built at import (with ``MOCK_API_KEY``) so the chat mock alone can
be served by name: ``uvicorn mockserver.openai:app``."""

from __future__ import annotations

import os
import time

import orjson

from mockserver.common import (
    ASGIApp,
    Headers,
    Receive,
    Scope,
    Send,
    lifespan,
    read_body,
    request_receive,
)
from mockserver.openai.chat import chat
from mockserver.openai.errors import BadRequest, error_body, send_body, send_json

MODELS = ("echo", "gpt-4o-mini", "gpt-4o")
_MODELS_BODY = orjson.dumps(
    {
        "object": "list",
        "data": [
            {"id": m, "object": "model", "created": 1700000000, "owned_by": "mock"} for m in MODELS
        ],
    }
)
_HEALTH_BODY = b'{"status":"ok"}'


_ROUTES = {"/health": b"GET", "/v1/models": b"GET", "/v1/chat/completions": b"POST"}


def auth_error(headers: Headers, expected: bytes | None) -> str | None:
    """OpenAI's 401 message for the request's Bearer token, or None when it may pass."""
    token: bytes | None = None
    for name, value in headers:
        if name == b"authorization":
            if value[:7].lower() == b"bearer ":
                token = value[7:].strip()
            break
    if not token:
        return (
            "You didn't provide an API key. You need to provide your API key in an Authorization header "  # noqa: E501  (OpenAI's exact wording)
            "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    if expected is not None and token != expected:
        shown = token.decode("latin-1")
        return f"Incorrect API key provided: {shown[:3]}***{shown[-4:]}."
    return None


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only ``Bearer <api_key>`` is let in."""
    expected = api_key.encode() if api_key else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        allowed = _ROUTES.get(path)
        if allowed is None:
            payload = error_body(f"Invalid URL ({method} {path})", "invalid_request_error")
            await send_json(send, 404, payload, started)
            return
        if method.encode() != allowed:
            payload = error_body(
                f"Invalid method for URL ({method} {path})", "invalid_request_error"
            )
            await send_json(send, 405, payload, started, [(b"allow", allowed)])
            return
        if path == "/health":
            await send_body(send, 200, _HEALTH_BODY, started)
            return
        denied = auth_error(scope["headers"], expected)
        if denied is not None:
            await send_json(
                send,
                401,
                error_body(denied, "invalid_request_error", None, "invalid_api_key"),
                started,
            )
            return
        if path == "/v1/models":
            await send_body(send, 200, _MODELS_BODY, started)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        request_receive.set(receive)
        try:
            await chat(scope, raw, send, started)
        except BadRequest as exc:
            payload = error_body(exc.message, "invalid_request_error", exc.param, exc.code)
            await send_json(send, 400, payload, started)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app


app = create_app(os.environ.get("MOCK_API_KEY") or None)
