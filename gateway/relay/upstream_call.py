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
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from core import tracing
from core.errors import GatewayError
from gateway.guards.breaker_board import Board, board
from gateway.guards.breaker_rules import Breaker, breaker_key
from gateway.guards.cooling import cooling_left, cooling_start
from gateway.guards.deployment_stats import stats_of
from gateway.relay.upstream_attempt import (
    Failed,
    UpstreamAnswer,
    UpstreamRequest,
    attempt_record,
    try_deployment,
)
from providers.catalog import CatalogModel, Deployment

log = logging.getLogger(__name__)

Route = list[tuple[CatalogModel, tuple[Deployment, ...]]]  # models in order, and their deployments
ModelRequestBuilder = Callable[[CatalogModel, Deployment], UpstreamRequest | None]


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
        self.last: Failed | None = None
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
            with tracing.span("gatewayz.upstream") as attempt:
                if attempt is not None:
                    attempt.set_attributes({"provider": deployment.provider, "model": model.id})
                outcome, status = await try_deployment(deployment, model.id, request, self.stream)
        except asyncio.CancelledError:  # its client left (gateway.relay.client_watch)
            if probe:  # a probe that said nothing: the next request may probe at once
                await asyncio.shield(self.breakers.return_probe(key))
            raise
        finally:
            stats.in_flight -= 1
        ms = (time.perf_counter() - started) * 1000
        if isinstance(outcome, UpstreamAnswer):
            self.attempts.append(attempt_record(deployment, model.id, 200, ms))
            stats.latency_add(outcome.latency_ms)
            if deployment.byok:
                if probe:
                    await self.breakers.return_probe(key)
            elif self.breakers.get(key) is not None:
                await self.breakers.record(key, True)
            outcome.model = model
            return outcome
        error = outcome.error
        self.attempts.append(attempt_record(deployment, model.id, status, ms, error))
        # What says nothing of the provider's health never counts against its breaker: the
        # request's own fault, a customer's own key (its quota, its refusal), a 429 (one
        # account asked to slow down: it cools instead, gateway.guards.cooling).
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
