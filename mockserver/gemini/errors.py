"""Google's error shape, ``{"error": {"code", "message", "status", "details"?}}``, and the
JSON style of every Gemini answer (pretty-printed, ``charset=UTF-8``), kept apart because
the request checks, the stream and the app all need them."""

from __future__ import annotations

from typing import Any

import orjson

from mockserver.common import Send, send_bytes

JSON = (b"content-type", b"application/json; charset=UTF-8")
PRETTY = orjson.OPT_INDENT_2

# HTTP status -> google.rpc.Code name, as the troubleshooting guide lists them.
_STATUSES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


class ApiError(Exception):
    def __init__(
        self, code: int, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def invalid(message: str, field: str | None = None) -> ApiError:
    details = None
    if field is not None:
        violation = {"field": field, "description": message}
        details = [
            {"@type": "type.googleapis.com/google.rpc.BadRequest", "fieldViolations": [violation]}
        ]
    return ApiError(400, message, details)


def error_body(exc: ApiError) -> bytes:
    error: dict[str, Any] = {
        "code": exc.code,
        "message": exc.message,
        "status": _STATUSES.get(exc.code, "UNKNOWN"),
    }
    if exc.details:
        error["details"] = exc.details
    return orjson.dumps({"error": error}, option=PRETTY)


async def send_error(send: Send, exc: ApiError) -> None:
    await send_bytes(send, exc.code, error_body(exc), [JSON])
