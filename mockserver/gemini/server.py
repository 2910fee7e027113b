"""The ASGI app: the Gemini API's and Vertex AI express mode's paths, the API key check (a
missing key and a wrong one fail differently, as at Google), the directive's faults, then
the answer. Every ``ApiError`` raised on the way becomes Google's error response here."""

from __future__ import annotations

import asyncio
import base64
import os
import re
import time
from typing import Any

import orjson

from mockserver.common import (
    ASGIApp,
    Receive,
    Scope,
    Send,
    header,
    key_matches,
    query_param,
    read_body,
    send_bytes,
)
from mockserver.gemini.answer import answer_of, blocked, candidates_of, envelope, parts_of
from mockserver.gemini.errors import JSON, PRETTY, ApiError, send_error
from mockserver.gemini.request import parse_request
from mockserver.gemini.stream import send_stream

# /{version}/models/{model}:{method} (Gemini API) and
# /{version}/publishers/google/models/{model}:{method} (Vertex AI express mode).
_PATH = re.compile(
    r"^/(?:(?P<gemini>v1beta|v1)/models|(?P<vertex>v1|v1beta1)/publishers/google/models)"
    r"/(?P<model>[^/:]+):(?P<method>[A-Za-z]+)$"
)
_METHODS = ("generateContent", "streamGenerateContent", "countTokens")


async def _fault(send: Send, d: dict[str, Any]) -> bool:
    """Applies ``delay`` and ``status``; True when the answer was an error."""
    if "delay" in d:
        await asyncio.sleep(d["delay"])
    status = d.get("status")
    if status is None:
        return False
    details = None
    if "retry_after" in d:
        details = [
            {
                "@type": "type.googleapis.com/google.rpc.RetryInfo",
                "retryDelay": f"{d['retry_after']}s",
            }
        ]
    await send_error(send, ApiError(status, d.get("message", f"mock fault {status}"), details))
    return True


async def _send_json(send: Send, payload: object) -> None:
    await send_bytes(send, 200, orjson.dumps(payload, option=PRETTY), [JSON])


async def generate(
    scope: Scope, raw: bytes, send: Send, model: str, vertex: bool, stream: bool
) -> None:
    req = parse_request(raw, model, vertex)
    if await _fault(send, req.directive):
        return
    answer = answer_of(req, scope)
    response_id = base64.urlsafe_b64encode(os.urandom(15)).decode()
    created = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
    if stream:
        await send_stream(send, scope, req, answer, response_id, created)
        return
    block = req.directive.get("safety_block")
    if block is not None:
        payload = blocked(req, answer, block)
    else:
        payload = {
            "candidates": candidates_of(req, parts_of(req, answer), answer.finish_reason),
            "usageMetadata": answer.usage,
        }
    await _send_json(send, envelope(req, response_id, created, payload))


async def count_tokens(raw: bytes, send: Send, model: str, vertex: bool) -> None:
    req = parse_request(raw, model, vertex, count_only=True)
    if await _fault(send, req.directive):
        return
    total = req.directive.get("prompt_tokens", req.prompt_tokens)
    payload: dict[str, Any] = {"totalTokens": total}
    if vertex:
        text = orjson.dumps(req.body.get("contents", [])).decode()
        payload["totalBillableCharacters"] = sum(1 for c in text if not c.isspace())
    payload["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": total}]
    await _send_json(send, payload)


def create_app(api_key: str | None = None) -> ASGIApp:
    """Build the ASGI app; with ``api_key`` only that key is let in."""
    expected = api_key.encode() if api_key else None

    def auth_error(scope: Scope, vertex: bool) -> ApiError | None:
        token = header(scope, b"x-goog-api-key")
        if token is None:
            key = query_param(scope, "key")
            token = key.encode() if key is not None else None
        if not token:
            return ApiError(
                403,
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",  # noqa: E501
            )
        if key_matches(token, expected):
            return None
        service = "aiplatform.googleapis.com" if vertex else "generativelanguage.googleapis.com"
        message = "API key not valid. Please pass a valid API key."
        details: list[dict[str, Any]] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "API_KEY_INVALID",
                "domain": "googleapis.com",
                "metadata": {"service": service},
            },
            {
                "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                "locale": "en-US",
                "message": message,
            },
        ]
        return ApiError(400, message, details)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        match = _PATH.match(scope["path"])
        if match is None or match["method"] not in _METHODS or scope["method"] != "POST":
            await send_error(
                send, ApiError(404, f"Method not found: {scope['method']} {scope['path']}")
            )
            return
        vertex = match["vertex"] is not None
        denied = auth_error(scope, vertex)
        if denied is not None:
            await send_error(send, denied)
            return
        raw = await read_body(receive)
        if raw is None:
            return
        method = match["method"]
        try:
            if method == "countTokens":
                await count_tokens(raw, send, match["model"], vertex)
            else:
                await generate(
                    scope, raw, send, match["model"], vertex, method == "streamGenerateContent"
                )
        except ApiError as exc:
            await send_error(send, exc)
        except OSError:
            # The client went away mid-stream; nothing left to tell it.
            return

    return app
