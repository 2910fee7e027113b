"""The ASGI app: POST only (OpenAI's 405 otherwise), the chat mock's Bearer auth before the
body is read, then the route to embeddings or images. Every ``BadRequest`` raised on the
way becomes OpenAI's 400 here."""

from __future__ import annotations

import time

from mockserver.common import ASGIApp, Receive, Scope, Send, read_body
from mockserver.openai import BadRequest, auth_error, error_body, send_json
from mockserver.openai_media.embeddings import embeddings
from mockserver.openai_media.images import images


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app for the two routes, behind the chat mock's Bearer auth."""
    expected = api_key.encode() if api_key else None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        path: str = scope["path"]
        if scope["method"] != "POST":
            payload = error_body(
                f"Invalid method for URL ({scope['method']} {path})", "invalid_request_error"
            )
            await send_json(send, 405, payload, started, [(b"allow", b"POST")])
            return
        denied = auth_error(scope["headers"], expected)
        if denied is not None:
            payload = error_body(denied, "invalid_request_error", None, "invalid_api_key")
            await send_json(send, 401, payload, started)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        try:
            if path == "/v1/images/generations":
                await images(scope, raw, send, started)
            else:
                await embeddings(raw, send, started)
        except BadRequest as exc:
            payload = error_body(exc.message, "invalid_request_error", exc.param, exc.code)
            await send_json(send, 400, payload, started)

    return app
