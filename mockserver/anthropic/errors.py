"""The Messages API's error shape: the error type for each status, the body, and the
``request-id`` / ``x-should-retry`` headers. It stands apart so the request checks can raise
``ApiError`` without importing the app that sends it."""

from __future__ import annotations

import orjson

from mockserver.common import Send, next_id, send_bytes

JSON = (b"content-type", b"application/json")


# status -> error type, as https://docs.claude.com/en/api/errors lists them; other 4xx
# are invalid_request_error ("we may also use this error type for other 4XX status
# codes") and other 5xx api_error.
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# The SDKs retry what the API marks retryable; the API says so in x-should-retry.
_RETRYABLE = {408, 409, 429}


class ApiError(Exception):
    def __init__(self, status: int, message: str, type_: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message
        self.type = type_ or error_type(status)


def invalid(message: str) -> ApiError:
    return ApiError(400, message, "invalid_request_error")


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status) or ("api_error" if status >= 500 else "invalid_request_error")


def request_id() -> str:
    return f"req_{next_id()}"


def error_body(type_: str, message: str, request_id: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id}
    )


async def send_error(send: Send, exc: ApiError, retry_after: int | None = None) -> None:
    rid = request_id()
    body = error_body(exc.type, exc.message, rid)
    retry = exc.status in _RETRYABLE or exc.status >= 500
    headers = [
        JSON,
        (b"request-id", rid.encode()),
        (b"x-should-retry", b"true" if retry else b"false"),
    ]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    await send_bytes(send, exc.status, body, headers)
