"""Errors in the OpenAI API's own shape: {"error": {"message", "type", "param", "code"}}."""

from __future__ import annotations

from typing import Any

import orjson


class GatewayError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.code = code
        self.param = param
        self.headers = headers or []

    def body(self) -> bytes:
        return orjson.dumps(
            {
                "error": {
                    "message": self.message,
                    "type": self.type,
                    "param": self.param,
                    "code": self.code,
                }
            }
        )


# Anthropic's error types by status (its API reference, "Errors").
ANTHROPIC_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    405: "invalid_request_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    504: "timeout_error",
}


def anthropic_error_body(error: GatewayError, request_id: str | None = None) -> bytes:
    """The same error in Anthropic's shape: {"type": "error", "error": {"type", "message"},
    "request_id"}; the request's id as its `request-id` header says it (a stream's error
    event has none, as Anthropic's have none)."""
    kind = ANTHROPIC_TYPES.get(error.status, "api_error")
    body: dict[str, object] = {"type": "error", "error": {"type": kind, "message": error.message}}
    if request_id is not None:
        body["request_id"] = request_id
    return orjson.dumps(body)


def bad_request(message: str, *, param: str | None = None, code: str | None = None) -> GatewayError:
    return GatewayError(400, message, param=param, code=code)


def not_found(message: str, *, code: str = "not_found") -> GatewayError:
    return GatewayError(404, message, code=code)


class UpstreamFailure(GatewayError):
    """A provider's failure as the client hears of it: our words, the provider's name and
    status class. The provider's own text (which names its model ids, our account's limits
    and organisation) is `detail`, for the request log's attempts and staff, never sent."""

    def __init__(self, status: int, message: str, *, detail: str, **kwargs: Any) -> None:
        super().__init__(status, message, **kwargs)
        self.detail = detail
