"""The OpenAI-compatible wire protocol (most providers): request shaping and usage reading.

Everything in the client's body that we do not act on (tools, tool_choice, response_format,
seed, logprobs, n, stop, ...) is forwarded unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.usage import Usage
from providers.adapters.common import auth_headers, quirks_apply
from providers.catalog import Deployment
from providers.translate.cache_control import marks_strip


def chat_request(
    body: dict[str, Any], deployment: Deployment, max_tokens: int
) -> tuple[str, dict[str, str], bytes]:
    """The upstream URL, headers and body for a chat completion on `deployment`.

    The client's output limits are forwarded as sent, and none is added when it set none
    (`max_tokens`, what the credit hold covers, is for protocols that require one): the
    provider's own default stands, as it would without the gateway."""
    if not deployment.cache_control:
        body = marks_strip(body)  # prompt-cache marks go only where declared taken
    upstream = quirks_apply(body, deployment)
    if upstream is body:
        upstream = dict(body)
    upstream["model"] = deployment.upstream_model_id
    if upstream.get("stream"):
        # Always ask for usage so every stream can be metered; the relay hides the usage
        # chunk from clients that did not ask for it.
        upstream["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return (
        f"{deployment.base_url}/chat/completions",
        auth_headers(deployment),
        orjson.dumps(upstream),
    )


def request_to(
    path: str, body: dict[str, Any], deployment: Deployment
) -> tuple[str, dict[str, str], bytes]:
    """A non-chat request (`/embeddings`, `/images/generations`) as the client sent it, on
    the provider's model and with its quirks. (`stream` is our own flag there.)"""
    upstream = {k: v for k, v in quirks_apply(body, deployment).items() if k != "stream"}
    upstream["model"] = deployment.upstream_model_id
    return f"{deployment.base_url}{path}", auth_headers(deployment), orjson.dumps(upstream)


def usage_read(usage: Any) -> Usage | None:
    """OpenAI's usage: `prompt_tokens` counts every prompt token, `cached_tokens` those read
    from the cache and, where the provider caches explicitly, `cache_write_tokens` (OpenRouter)
    those written to it."""
    if not isinstance(usage, dict):
        return None
    details = usage.get("prompt_tokens_details")
    if not isinstance(details, dict):
        details = {}
    return Usage(
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        cached_tokens=int(details.get("cached_tokens") or 0),
        cache_write_tokens=int(details.get("cache_write_tokens") or 0),
    )


def error_message(body: bytes) -> str:
    """The provider's own error message, from an OpenAI-shaped (or any) error body."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return body[:300].decode(errors="replace").strip() or "no message"
    if isinstance(data, dict):
        error = data.get("error", data)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
        if isinstance(error, str):
            return error
    return "no message"
