"""The OpenAI-compatible wire protocol (most providers): requests as the client sent them,
on the provider's model and with its quirks; answers and streams as they come.

Everything in the client's body that we do not act on (tools, tool_choice, response_format,
seed, logprobs, n, stop, ...) is forwarded unchanged.
"""

from __future__ import annotations

from typing import Any

import orjson

from core.errors import UpstreamFailure
from core.usage import Usage, usage_estimate
from providers.deployments import Deployment
from providers.protocols.base import Decoder, ProbeRequest, UpstreamRequest, WireProtocol
from providers.protocols.common import auth_headers, error_message, quirks_apply
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


class OpenAIDecoder(Decoder):
    def __init__(self) -> None:
        super().__init__()
        self.done = False

    def feed(self, name: bytes, data: bytes) -> list[dict[str, Any]]:
        if data == b"[DONE]":
            self.done = True
            return []
        chunk = orjson.loads(data)
        usage = usage_read(chunk.get("usage"))
        if usage is not None:
            self.usage = usage
        return [chunk]

    def finished(self) -> bool:
        return self.done


class OpenAIProtocol(WireProtocol):
    name = "openai"
    speaks_chat = True

    chat_request = staticmethod(chat_request)

    def completion_from(
        self,
        data: dict[str, Any],
        deployment: Deployment,
        body: dict[str, Any],
        body_bytes: int,
        size: int,
    ) -> tuple[dict[str, Any], Usage]:
        model_id = body["model"]
        if not isinstance(data.get("choices"), list) and data.get("error"):
            # Some OpenAI-compatible providers answer a failure with 200 and an error body.
            raise UpstreamFailure(
                502,
                f"{deployment.provider} failed on this request (it answered 200 with an error).",
                type="server_error",
                code="upstream_error",
                detail=error_message(orjson.dumps(data)),
            )
        usage = usage_read(data.get("usage")) or usage_estimate(body_bytes, size // 4)
        data["model"] = model_id  # the model the client asked for; the provider's is a header
        return data, usage

    def chat_decoder(self, body: dict[str, Any], deployment: Deployment) -> Decoder:
        return OpenAIDecoder()

    def embeddings_request(self, body: dict[str, Any], deployment: Deployment) -> UpstreamRequest:
        return request_to("/embeddings", body, deployment)

    def images_request(self, body: dict[str, Any], deployment: Deployment) -> UpstreamRequest:
        return request_to("/images/generations", body, deployment)

    def probe(self, deployment: Deployment) -> ProbeRequest:
        url = f"{deployment.base_url}/models"
        return ProbeRequest("GET", url, auth_headers(deployment), None, per_model=False)


PROTOCOL = OpenAIProtocol()
