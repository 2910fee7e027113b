"""Calling a model's deployments in order until one answers (failover before the first byte).

A provider's credential, capacity or availability failure moves on to the next deployment;
an error about the request itself is the client's answer and is returned at once.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from gateway.errors import GatewayError
from gateway.upstream import UpstreamError, upstream_session, upstream_timeout
from providers.adapters import anthropic, gemini, openai
from providers.adapters.openai import error_message
from providers.catalog import CatalogModel, Deployment

UpstreamRequest = tuple[str, dict[str, str], bytes]  # url, headers, body
RequestBuilder = Callable[[Deployment], UpstreamRequest | None]  # None: cannot serve it

# Gemini's reasons for a 400 that is about our account there, not about the request.
GEMINI_ACCOUNT_FAILURES = re.compile(rb"API_KEY_INVALID|FAILED_PRECONDITION|API_KEY_EXPIRED")
# Failures that say nothing about the request: another deployment may well succeed.
FAILOVER_STATUSES = frozenset({401, 402, 403, 404, 408, 409, 425, 429})


@dataclass(slots=True)
class UpstreamAnswer:
    deployment: Deployment
    response: aiohttp.ClientResponse  # opened, body not yet read
    latency_ms: float  # until the upstream's headers arrived


def _failure(
    status: int, deployment: Deployment, body: bytes, headers: Mapping[str, str]
) -> GatewayError:
    message = f"{deployment.provider}: {error_message(body)}"
    if status == 429:
        retry_after = headers.get("retry-after")
        extra = [(b"retry-after", retry_after.encode())] if retry_after else []
        return GatewayError(
            429,
            f"The provider is rate limiting: {message}",
            type="rate_limit_error",
            code="upstream_rate_limited",
            headers=extra,
        )
    if status in FAILOVER_STATUSES or status >= 500:
        return GatewayError(
            502,
            f"The provider failed: {message}",
            type="upstream_error",
            code="upstream_error",
        )
    if status == 400 and deployment.protocol == "gemini" and GEMINI_ACCOUNT_FAILURES.search(body):
        # Gemini answers a bad key or an unserved region with 400, not 401/403.
        return GatewayError(
            502, f"The provider failed: {message}", type="upstream_error", code="upstream_error"
        )
    # The provider's 4xx about the request itself, passed through with its message.
    return GatewayError(status, message, type="invalid_request_error", code="upstream_rejected")


def chat_request(
    body: dict[str, Any], deployment: Deployment, max_tokens: int
) -> UpstreamRequest | None:
    if deployment.protocol == "openai":
        return openai.chat_request(body, deployment, max_tokens)
    if deployment.protocol == "anthropic":
        return anthropic.chat_request(body, deployment, max_tokens)
    if deployment.protocol == "gemini":
        return gemini.chat_request(body, deployment, max_tokens)
    return None  # fal serves images only


async def deployments_call(model: CatalogModel, build: RequestBuilder) -> UpstreamAnswer:
    """Tries the model's deployments in order; `build` shapes the request for each one.

    A deployment whose protocol cannot carry the request (`build` refuses with a 400) is
    skipped; if none can, the first refusal is the answer."""
    session = upstream_session()
    last: GatewayError | None = None
    refusal: GatewayError | None = None
    for deployment in model.deployments:
        try:
            request = build(deployment)
        except GatewayError as exc:
            refusal = refusal or exc
            continue
        if request is None:
            continue
        url, headers, payload = request
        timeout = upstream_timeout(deployment.connect_timeout, deployment.read_timeout)
        started = time.perf_counter()
        try:
            response = await session.post(url, data=payload, headers=headers, timeout=timeout)
        except TimeoutError:
            last = GatewayError(
                504,
                f"{deployment.provider} did not answer in time.",
                type="timeout",
                code="upstream_timeout",
            )
            continue
        except aiohttp.ClientError:
            last = GatewayError(
                503,
                f"{deployment.provider} could not be reached.",
                type="upstream_error",
                code="upstream_unavailable",
            )
            continue
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status == 200:
            return UpstreamAnswer(deployment, response, latency_ms)
        try:
            error_body = await response.read()
        except UpstreamError:
            error_body = b""
        finally:
            response.release()
        failure = _failure(response.status, deployment, error_body, response.headers)
        if failure.code == "upstream_rejected":
            raise failure
        last = failure
    raise (
        last
        or refusal
        or GatewayError(
            503,
            "No provider is available for this model.",
            type="upstream_error",
            code="no_provider_available",
        )
    )
