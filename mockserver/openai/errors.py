"""OpenAI's error body and the JSON response with the headers OpenAI sends on every reply
(``x-request-id``, ``openai-processing-ms``). They stand apart from the chat because the
embeddings and images mock (``openai_media``) answers with the same."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import orjson

from mockserver.common import Headers, Send, next_id

_JSON = (b"content-type", b"application/json")


# status -> (type, code) as the OpenAI error body spells them.
FAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("not_found_error", "model_not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class BadRequest(Exception):
    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


def error_body(
    message: str, type_: str, param: str | None = None, code: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def fault_body(status: int, message: str | None) -> dict[str, Any]:
    """The error body of a ``status`` directive."""
    type_, code = FAULTS.get(
        status, ("server_error" if status >= 500 else "invalid_request_error", None)
    )
    return error_body(message or f"mock fault {status}", type_, None, code)


async def send_body(
    send: Send,
    status: int,
    body: bytes,
    started: float,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    headers: Headers = [
        _JSON,
        (b"content-length", str(len(body)).encode()),
        (b"x-request-id", f"req_{next_id()}".encode()),
        (
            b"openai-processing-ms",
            str(int((time.perf_counter() - started) * 1000)).encode(),
        ),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Send,
    status: int,
    payload: object,
    started: float,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> None:
    await send_body(send, status, orjson.dumps(payload), started, extra)
