"""Calling a model's deployments in order until one answers (failover before the first byte).

A provider's credential, capacity or availability failure moves on to the next deployment;
an error about the request itself is the client's answer and is returned at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from gateway.breakers import board, breaker_key
from gateway.errors import GatewayError
from gateway.routing import stats_of
from gateway.upstream import UpstreamError, upstream_session, upstream_timeout
from monitoring.services import RequestOutcome
from providers.adapters import anthropic, gemini, openai
from providers.adapters.openai import error_message
from providers.catalog import CatalogModel, Deployment

log = logging.getLogger(__name__)

UpstreamRequest = tuple[str, dict[str, str], bytes]  # url, headers, body

# Gemini's reasons for a 400 that is about our account there, not about the request.
GEMINI_ACCOUNT_FAILURES = re.compile(rb"API_KEY_INVALID|FAILED_PRECONDITION|API_KEY_EXPIRED")
# Failures that say nothing about the request: another deployment may well succeed.
FAILOVER_STATUSES = frozenset({401, 402, 403, 404, 408, 409, 425, 429})
CREDENTIAL_STATUSES = frozenset({401, 402, 403})


@dataclass(slots=True)
class UpstreamAnswer:
    deployment: Deployment
    response: aiohttp.ClientResponse  # opened; see `body` and `first`
    latency_ms: float  # until the upstream's headers arrived
    model: CatalogModel | None = None  # the model that served (one of the request's `models`)
    # Read before the answer was taken, so that a failure there could still fail over: a
    # JSON answer's whole body, or a stream's first block.
    body: bytes = b""
    first: bytes = b""
    data: dict[str, Any] | None = None  # `body`, parsed

    async def blocks(self) -> AsyncIterator[bytes]:
        """A stream's bytes as they arrive, starting with the block already read."""
        if self.first:
            yield self.first
        content = self.response.content
        try:
            async for block in content.iter_any():
                yield block
        except UpstreamError:
            # When the connection breaks, aiohttp raises at once and drops what it had
            # buffered; that was produced before the cut, so it is the client's (and billed).
            rest = b"".join(getattr(content, "_buffer", ()))
            if rest:
                yield rest
            raise


def _failure(
    status: int, deployment: Deployment, body: bytes, headers: Mapping[str, str]
) -> GatewayError:
    if status in CREDENTIAL_STATUSES or (
        status == 400 and deployment.protocol == "gemini" and GEMINI_ACCOUNT_FAILURES.search(body)
    ):
        # About our account there, not the request; and providers quote part of the key
        # they were sent ("Incorrect API key provided: sk-***abcd"): never the client's to see.
        # Gemini answers a bad key or an unserved region with 400, not 401/403.
        if deployment.byok:  # the customer's own key: theirs to fix, and to read about
            return GatewayError(
                502,
                f"The provider failed: {deployment.provider} refused your own key ({status}): "
                f"{error_message(body)}",
                type="upstream_error",
                code="byok_key_refused",
            )
        return GatewayError(
            502,
            f"The provider failed: {deployment.provider} refused Gatewayz's account ({status}).",
            type="upstream_error",
            code="upstream_error",
        )
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


Route = list[tuple[CatalogModel, tuple[Deployment, ...]]]  # models in order, and their deployments
ModelRequestBuilder = Callable[[CatalogModel, Deployment], UpstreamRequest | None]


@dataclass(slots=True)
class _Failed:
    error: GatewayError
    transient: bool  # worth another try on the same deployment after a pause
    retry_after: float | None = None  # what the provider asked for


def _transient(status: int) -> bool:
    return status in (408, 409, 425, 429) or status >= 500


def _retry_after(headers: Mapping[str, str]) -> float | None:
    value = headers.get("retry-after", "")
    try:
        seconds = float(value)
    except ValueError:
        return None  # an HTTP date: rare from APIs, and not worth a clock comparison
    return seconds if 0 <= seconds < 1e6 else None


def _attempt_record(deployment: Deployment, model: str, status: int, ms: float, error: str) -> dict:
    record = {
        "provider": deployment.provider,
        "model": model,
        "status": status,
        "latency_ms": round(ms, 1),
        "error": error,
    }
    if deployment.byok:
        record["byok"] = True
    return record


async def _try(
    deployment: Deployment, request: UpstreamRequest, stream: bool
) -> tuple[UpstreamAnswer | _Failed, int]:
    """One attempt: the answer (with its body or first block read), or why it failed, and the
    provider's status (0: it never answered). Bounded by the provider's timeouts alone: a
    non-stream answer's headers come only once it is written, which may take minutes."""
    url, headers, payload = request
    timeout = upstream_timeout(deployment.connect_timeout, deployment.read_timeout)
    started = time.perf_counter()
    response: aiohttp.ClientResponse | None = None
    try:
        response = await upstream_session().post(
            url, data=payload, headers=headers, timeout=timeout
        )
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status != 200:
            body = await _error_body(response)
            failure = _failure(response.status, deployment, body, response.headers)
            transient = _transient(response.status) and failure.code != "upstream_rejected"
            retry_after = _retry_after(response.headers) if response.status == 429 else None
            return _Failed(failure, transient, retry_after), response.status
        answer = UpstreamAnswer(deployment, response, latency_ms)
        if stream:
            answer.first = await response.content.readany()
            if not answer.first:
                raise aiohttp.ClientPayloadError("the stream ended before any event")
            _first_event_check(answer.first)
        else:
            answer.body = await response.read()
            answer.data = orjson.loads(answer.body)
            if not isinstance(answer.data, dict):
                raise ValueError("not a JSON object")
        return answer, 200
    except TimeoutError:
        error = GatewayError(
            504,
            f"{deployment.provider} did not answer in time.",
            type="timeout",
            code="upstream_timeout",
        )
    except (aiohttp.ClientError, ValueError):
        answered = response is not None
        error = GatewayError(
            502 if answered else 503,
            f"{deployment.provider} sent an incomplete or invalid response."
            if answered
            else f"{deployment.provider} could not be reached.",
            type="upstream_error",
            code="upstream_invalid_response" if answered else "upstream_unavailable",
        )
    if response is not None:
        response.release()
    return _Failed(error, True), response.status if response is not None else 0


def _first_event_check(block: bytes) -> None:
    """Raises ValueError if the stream's first whole event is not JSON: a provider sending
    garbage is failed over while nothing has reached the client. (Later events are relayed
    as they come: parsing each would cost the fast path.)"""
    at = block.find(b"data:")
    end = block.find(b"\n", at)
    if at < 0 or end < 0:
        return  # no whole event in this block yet
    payload = block[at + 5 : end].strip()
    if payload != b"[DONE]":
        orjson.loads(payload)


async def _error_body(response: aiohttp.ClientResponse) -> bytes:
    try:
        return await response.read()
    except UpstreamError:
        return b""
    finally:
        response.release()


def _backoff(round_: int, retry_after: float | None) -> float:
    base = settings.GATEWAYZ_RETRY_BACKOFF_SECONDS * 2**round_
    jittered = base * (0.5 + random.random() / 2)
    return max(jittered, retry_after or 0.0)


def _circuit_open(retry_at: float) -> GatewayError:
    wait = max(1, math.ceil(retry_at - time.time()))
    return GatewayError(
        503,
        f"Every provider of this model is failing; its circuit is open. Retry in {wait} s.",
        type="upstream_error",
        code="provider_circuit_open",
        headers=[(b"retry-after", str(wait).encode())],
    )


async def route_call(
    route: Route, build: ModelRequestBuilder, stream: bool, attempts: list[dict]
) -> UpstreamAnswer:
    """Tries the route's deployments in order, until one answers; then, if what failed may
    pass on a second try (timeouts, 429s, 5xx), tries those again after a pause. Bounded:
    GATEWAYZ_MAX_ATTEMPTS attempts; no attempt or pause starts once
    GATEWAYZ_UPSTREAM_BUDGET_SECONDS have passed; each attempt by the provider's timeouts.
    Each attempt is appended to `attempts`.

    Skipped: deployments whose circuit is open, and those whose protocol cannot carry the
    request (`build` refuses with a 400; if all do, the first refusal is the answer). An
    error about the request itself (a provider's 400) is returned at once."""
    breakers = board()
    if breakers.stale():
        await breakers.fresh()
    deadline = time.monotonic() + settings.GATEWAYZ_UPSTREAM_BUDGET_SECONDS
    last: _Failed | None = None
    refusal: GatewayError | None = None
    open_until: float | None = None  # the soonest an open circuit may be probed
    todo = [(model, d) for model, deployments in route for d in deployments]
    for round_ in range(settings.GATEWAYZ_RETRY_ROUNDS + 1):
        again = []
        wait_hint: float | None = None  # the longest Retry-After of a failure worth retrying
        for model, deployment in todo:
            remaining = deadline - time.monotonic()
            if len(attempts) >= settings.GATEWAYZ_MAX_ATTEMPTS or remaining <= 0:
                break
            key = breaker_key(deployment.provider, model.family)
            breaker = breakers.get(key)
            if breaker is not None:
                routable = breaker.routable(time.time())
                if routable is None:
                    routable = await breakers.claim_probe(key)
                if not routable:
                    at = breaker.retry_at()
                    open_until = at if open_until is None else min(open_until, at)
                    continue
            try:
                request = build(model, deployment)
            except GatewayError as exc:
                refusal = refusal or exc
                continue
            if request is None:
                continue
            started = time.perf_counter()
            stats = stats_of(deployment.provider, model.family)
            stats.in_flight += 1
            try:
                result, status = await _try(deployment, request, stream)
            finally:
                stats.in_flight -= 1
            ms = (time.perf_counter() - started) * 1000
            if isinstance(result, UpstreamAnswer):
                attempts.append(_attempt_record(deployment, model.id, 200, ms, ""))
                stats.latency_add(result.latency_ms)
                if breaker is not None and not deployment.byok:
                    await breakers.record(key, True)
                result.model = model
                return result
            error = result.error
            attempts.append(_attempt_record(deployment, model.id, status, ms, error.code or ""))
            if error.code == "upstream_rejected":
                raise error  # about the request: no other provider would take it either
            log.info("%s at %s failed: %s", model.id, deployment.provider, error.message)
            if not deployment.byok:  # a customer's own key (its quota, its refusal) says
                # nothing of the provider's health: it must not cut the provider off for all
                await breakers.record(key, False, f"{status or error.code}: {error.message}")
            last = result
            if result.transient:
                again.append((model, deployment))
                if result.retry_after is not None:
                    wait_hint = max(wait_hint or 0.0, result.retry_after)
        if not again or len(attempts) >= settings.GATEWAYZ_MAX_ATTEMPTS or last is None:
            break
        if (wait_hint or 0.0) > settings.GATEWAYZ_RETRY_AFTER_MAX_SECONDS:
            break  # the provider wants longer than a client should wait: say so instead
        pause = _backoff(round_, wait_hint)
        if time.monotonic() + pause >= deadline:
            break
        await asyncio.sleep(pause)
        todo = again
    if last is not None:
        raise last.error
    if refusal is not None:
        raise refusal
    if open_until is not None:
        raise _circuit_open(open_until)
    raise GatewayError(
        503,
        "No provider is available for this model.",
        type="upstream_error",
        code="no_provider_available",
    )


# What a served request tells about its deployment once it is over (passive health).
async def stream_broke(model: CatalogModel, deployment: Deployment) -> None:
    """A stream cut midway counts against the deployment's breaker."""
    if deployment.byok:
        return
    key = breaker_key(deployment.provider, model.family)
    await board().record(key, False, "the stream ended early")


def throughput_measure(
    outcome: RequestOutcome, model: CatalogModel, deployment: Deployment
) -> None:
    """A success adds to the deployment's measured output tokens per second."""
    if outcome.status == 200 and outcome.completion_tokens:
        generating_ms = outcome.total_latency_ms - (outcome.ttft_ms or 0.0)
        stats = stats_of(deployment.provider, model.family)
        stats.throughput_add(outcome.completion_tokens, generating_ms / 1000)
