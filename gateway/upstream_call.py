"""Calling a model's deployments in order until one answers (failover before the first byte).

A provider's credential, capacity or availability failure moves on to the next deployment;
an error about the request itself is the client's answer and is returned at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from django.conf import settings

from core.errors import GatewayError
from core.outcome import RequestOutcome
from gateway.breakers import Board, Breaker, board, breaker_key
from gateway.cooling import cooling_left, cooling_start
from gateway.routing import stats_of
from gateway.upstream import UpstreamError, upstream_session, upstream_timeout
from providers.adapters import anthropic, gemini, openai
from providers.catalog import CatalogModel, Deployment
from providers.upstream_errors import UpstreamFailure, upstream_failure

log = logging.getLogger(__name__)

UpstreamRequest = tuple[str, dict[str, str], bytes]  # url, headers, body


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


def _attempt_record(
    deployment: Deployment, model: str, status: int, ms: float, error: GatewayError | None = None
) -> dict:
    record = {
        "provider": deployment.provider,
        "model": model,
        "status": status,
        "latency_ms": round(ms, 1),
        "error": (error.code or "") if error is not None else "",
    }
    if isinstance(error, UpstreamFailure) and error.detail:
        record["detail"] = error.detail[:1000]  # the provider's own words, for staff
    if deployment.byok:
        record["byok"] = True
    return record


async def _try(
    deployment: Deployment, model_id: str, request: UpstreamRequest, stream: bool
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
            failure = upstream_failure(
                response.status, deployment, model_id, body, response.headers
            )
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
            type="server_error",
            code="upstream_timeout",
        )
    except (aiohttp.ClientError, ValueError):
        answered = response is not None
        error = GatewayError(
            502 if answered else 503,
            f"{deployment.provider} sent an incomplete or invalid response."
            if answered
            else f"{deployment.provider} could not be reached.",
            type="server_error",
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
        type="server_error",
        code="provider_circuit_open",
        headers=[(b"retry-after", str(wait).encode())],
    )


def _cooling(seconds: float) -> GatewayError:
    wait = max(1, math.ceil(seconds))
    return GatewayError(
        429,
        f"Every provider of this model is rate limiting; retry after {wait} s.",
        type="rate_limit_error",
        code="upstream_rate_limited",
        headers=[(b"retry-after", str(wait).encode())],
    )


Candidate = tuple[CatalogModel, Deployment]


@dataclass(slots=True)
class _Round:
    """What one pass over the candidates left to do."""

    again: list[Candidate]  # failed transiently, or cooling: worth another try after a pause
    probing: list[Candidate]  # half-open with another request's probe out
    wait_hint: float | None = None  # the longest Retry-After (or cooling) among `again`


async def route_call(
    route: Route, build: ModelRequestBuilder, stream: bool, attempts: list[dict]
) -> UpstreamAnswer:
    """Tries the route's deployments in order, until one answers; then, if what failed may
    pass on a second try (timeouts, 429s, 5xx), tries those again after a pause. Bounded:
    GATEWAYZ_MAX_ATTEMPTS attempts; no attempt or pause starts once
    GATEWAYZ_UPSTREAM_BUDGET_SECONDS have passed; each attempt by the provider's timeouts.
    Each attempt is appended to `attempts`.

    Skipped: deployments whose circuit is open; those cooling after a 429 (retried once
    they have cooled, if that is soon); those whose protocol cannot carry the request
    (`build` refuses with a 400; if all do, the first refusal is the answer). When what is
    left is half-open with another request's probe out, the request waits for its verdict
    (GATEWAYZ_PROBE_WAIT_SECONDS at most) rather than be refused. An error about the request
    itself (a provider's 400) is returned at once."""
    breakers = board()
    if breakers.stale():
        await breakers.fresh()
    call = _Call(breakers, build, stream, attempts)
    todo = [(model, d) for model, deployments in route for d in deployments]
    probe_wait_until = time.monotonic() + settings.GATEWAYZ_PROBE_WAIT_SECONDS
    retries = settings.GATEWAYZ_RETRY_ROUNDS
    round_ = 0
    while True:
        outcome = await call.round(todo)
        if isinstance(outcome, UpstreamAnswer):
            return outcome
        if outcome.probing and not outcome.again and time.monotonic() < probe_wait_until:
            keys = [breaker_key(d.provider, m.family) for m, d in outcome.probing]
            await breakers.verdict(keys, min(probe_wait_until, call.deadline))
            todo = outcome.probing
            continue
        if not outcome.again or retries <= 0 or call.spent():
            break
        if (outcome.wait_hint or 0.0) > settings.GATEWAYZ_RETRY_AFTER_MAX_SECONDS:
            break  # the provider wants longer than a client should wait: say so instead
        pause = _backoff(round_, outcome.wait_hint)
        if time.monotonic() + pause >= call.deadline:
            break
        await asyncio.sleep(pause)
        retries, round_ = retries - 1, round_ + 1
        todo = outcome.again + outcome.probing
    raise call.final_error()


class _Call:
    """One request's attempts over its candidates, and what they taught."""

    def __init__(
        self, breakers: Board, build: ModelRequestBuilder, stream: bool, attempts: list[dict]
    ) -> None:
        self.breakers, self.build, self.stream, self.attempts = breakers, build, stream, attempts
        self.deadline = time.monotonic() + settings.GATEWAYZ_UPSTREAM_BUDGET_SECONDS
        self.last: _Failed | None = None
        self.refusal: GatewayError | None = None
        self.open_until: float | None = None  # the soonest an open circuit may be probed
        self.cooled_in: float | None = None  # the soonest a cooling deployment is back

    def spent(self) -> bool:
        return len(self.attempts) >= settings.GATEWAYZ_MAX_ATTEMPTS

    def final_error(self) -> GatewayError:
        if self.last is not None:
            return self.last.error
        if self.cooled_in is not None:
            return _cooling(self.cooled_in)
        if self.refusal is not None:
            return self.refusal
        if self.open_until is not None:
            return _circuit_open(self.open_until)
        return GatewayError(
            503,
            "No provider is available for this model.",
            type="server_error",
            code="no_provider_available",
        )

    async def _gate(self, key: str, breaker: Breaker) -> tuple[bool, bool]:
        """(may this request use the deployment, did it claim the breaker's probe)."""
        routable = breaker.routable(time.time())
        if routable is not None:
            return routable, False
        claimed = await self.breakers.claim_probe(key)
        return claimed, claimed

    async def round(self, todo: list[Candidate]) -> UpstreamAnswer | _Round:
        result = _Round([], [])
        for model, deployment in todo:
            if self.spent() or time.monotonic() >= self.deadline:
                break
            cooling = cooling_left(deployment, model.family)
            if cooling:
                result.again.append((model, deployment))
                result.wait_hint = max(result.wait_hint or 0.0, cooling)
                self.cooled_in = min(self.cooled_in or cooling, cooling)
                continue
            key = breaker_key(deployment.provider, model.family)
            breaker = self.breakers.get(key)  # None, the common case: healthy
            allowed, probe = (True, False) if breaker is None else await self._gate(key, breaker)
            if not allowed:
                breaker = self.breakers.get(key)  # as the claim left it
                if breaker is not None and breaker.probing(time.time()):
                    result.probing.append((model, deployment))
                    # If its verdict is not in by the end of the wait: open, for a second more.
                    soon = time.time() + 1
                    self.open_until = (
                        soon if self.open_until is None else min(self.open_until, soon)
                    )
                elif breaker is not None:
                    at = breaker.retry_at()
                    self.open_until = at if self.open_until is None else min(self.open_until, at)
                continue
            answer = await self._attempt(model, deployment, key, probe, result)
            if answer is not None:
                return answer
        return result

    async def _attempt(
        self, model: CatalogModel, deployment: Deployment, key: str, probe: bool, result: _Round
    ) -> UpstreamAnswer | None:
        try:
            request = self.build(model, deployment)
        except GatewayError as exc:
            self.refusal = self.refusal or exc
            request = None
        if request is None:
            if probe:
                await self.breakers.return_probe(key)
            return None
        started = time.perf_counter()
        stats = stats_of(deployment.provider, model.family)
        stats.in_flight += 1
        try:
            outcome, status = await _try(deployment, model.id, request, self.stream)
        except asyncio.CancelledError:  # its client left (gateway.client_watch)
            if probe:  # a probe that said nothing: the next request may probe at once
                await asyncio.shield(self.breakers.return_probe(key))
            raise
        finally:
            stats.in_flight -= 1
        ms = (time.perf_counter() - started) * 1000
        if isinstance(outcome, UpstreamAnswer):
            self.attempts.append(_attempt_record(deployment, model.id, 200, ms))
            stats.latency_add(outcome.latency_ms)
            if deployment.byok:
                if probe:
                    await self.breakers.return_probe(key)
            elif self.breakers.get(key) is not None:
                await self.breakers.record(key, True)
            outcome.model = model
            return outcome
        error = outcome.error
        self.attempts.append(_attempt_record(deployment, model.id, status, ms, error))
        # What says nothing of the provider's health never counts against its breaker: the
        # request's own fault, a customer's own key (its quota, its refusal), a 429 (one
        # account asked to slow down: it cools instead, gateway.cooling).
        counts = not deployment.byok and status != 429 and error.code != "upstream_rejected"
        if counts:
            await self.breakers.record(key, False, f"{status or error.code}: {error.message}")
        elif probe:
            await self.breakers.return_probe(key)
        if status == 429:
            cooling_start(deployment, model.family, outcome.retry_after)
        if error.code == "upstream_rejected":
            raise error  # about the request: no other provider would take it either
        log.info("%s at %s failed: %s", model.id, deployment.provider, error.message)
        self.last = outcome
        if outcome.transient:
            result.again.append((model, deployment))
            if outcome.retry_after is not None:
                result.wait_hint = max(result.wait_hint or 0.0, outcome.retry_after)
        return None


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
