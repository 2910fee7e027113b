"""The ASGI app: ``Authorization: Key`` checked first, then the routes, the queue's
(``/queue/…``, its ``requests/{id}`` paths) and the synchronous call, which answers the
result directly. Every ``FalError`` raised on the way becomes Fal's error response here."""

from __future__ import annotations

import uuid

from mockserver.common import ASGIApp, Receive, Scope, Send, header, key_matches, read_body
from mockserver.fal.answer import result_of
from mockserver.fal.errors import FalError, fault, send_error, send_json
from mockserver.fal.queue import NAMESPACES, Queue
from mockserver.fal.request import parse_input


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only ``Key <api_key>`` is let in."""
    expected = api_key.encode() if api_key else None
    queue = Queue()

    def auth_error(scope: Scope) -> str | None:
        value = header(scope, b"authorization")
        if value is None or value[:4].lower() != b"key ":
            return "Missing authorization header"
        if not key_matches(value[4:].strip(), expected):
            return "No user found for Key ID and Secret"
        return None

    async def route(scope: Scope, receive: Receive, send: Send) -> None:
        path: str = scope["path"]
        method: str = scope["method"]
        queued = path.startswith("/queue/")
        segments = [s for s in path.removeprefix("/queue" if queued else "").split("/") if s]
        if "requests" in segments and queued:
            i = segments.index("requests")
            app, rest = "/".join(segments[:i]), segments[i + 1 :]
            if len(rest) == 1 and method == "GET":
                return await queue.result(app, rest[0], send)
            if len(rest) == 2 and rest[1] == "status" and method == "GET":
                return await queue.status(scope, app, rest[0], send)
            if len(rest) == 2 and rest[1] == "cancel" and method == "PUT":
                return await queue.cancel(app, rest[0], send)
            raise FalError(405, "Method Not Allowed")
        if method != "POST" or len(segments) < 2 + (segments[0] in NAMESPACES if segments else 0):
            raise FalError(404, "Not Found")
        raw = await read_body(receive)
        if raw is None:
            return None
        if queued:
            return await queue.submit(scope, segments, raw, send)
        inp = parse_input(raw)
        await fault(inp.directive)
        result = result_of(scope, inp)
        await send_json(send, 200, result, [(b"x-fal-request-id", str(uuid.uuid4()).encode())])
        return None

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        denied = auth_error(scope)
        try:
            if denied is not None:
                raise FalError(401, denied)
            await route(scope, receive, send)
        except FalError as exc:
            await send_error(send, exc)

    return app
