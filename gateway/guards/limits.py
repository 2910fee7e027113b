"""Rate limits: what applies to a request, the counters that enforce them, the 429 and the
rate-limit headers (OpenAI's `x-ratelimit-*`; Anthropic's `anthropic-ratelimit-*` on its
route).

Enforcement is atomic with the credit hold: in Redis, one script checks every limit and the
credit, then counts the request in all of them or in none (billing.redis_credit, ADMIT); so
limits hold exactly across processes and replicas. Without Redis (the embedded default) the
same rules run in-process (`LocalLimiter`), exact within the one process that serves.

Windows are fixed: the current UTC minute, hour, day or calendar month, or none at all (a
key's lifetime). Tokens count an estimate at admission (prompt bytes ÷ 4, plus the output
the request allows, as OpenAI counts) and are corrected to the actual count at settlement,
in the windows of admission; spend counts the credit held, in micro-credits rounded up, and
is corrected to the actual cost the same way. Concurrency counts requests admitted and not
yet settled; an entry a crashed process left behind is released with its hold.

A key's lifetime caps (`max_requests`, a total spend limit) are restrictions of the key
(docs/security.md): refused with a 403, not a 429, since waiting does not help. Their
counters are seeded from the request log when a key is loaded, so they survive a Redis
that lost its data and the restarts of an embedded process.
"""

from __future__ import annotations

import functools
import math
import time
from dataclasses import dataclass, field
from decimal import Decimal

from accounts.limit_plans import (
    KEY_CAPS,
    MICRO,
    Limit,
    LimitPlan,
    PlannedLimit,
    micro_credits,
)
from core.errors import GatewayError

WORDS = {
    "rpm": "requests per minute",
    "rph": "requests per hour",
    "rpd": "requests per day",
    "tpm": "tokens per minute",
    "tpd": "tokens per day",
    "concurrent": "concurrent requests",
    "requests_total": "requests in all",
    "spend_day": "micro-credits a day",
    "spend_month": "micro-credits a month",
    "spend_total": "micro-credits in all",
}


class KeyCapReached(GatewayError):
    """A key's own cap: the key's restriction, not a rate (a 403; docs/security.md)."""

    def __init__(self, limit: Limit, reset_at: float) -> None:
        if limit.kind == "requests_total":
            message = f"This API key has made its {limit.cap} requests: its maximum."
            code = "key_max_requests_reached"
        else:
            cap = f"{limit.cap / MICRO:g} credits"
            period = {"spend_day": "today", "spend_month": "this month"}.get(limit.kind)
            message = (
                f"This API key's spend limit of {cap} {period} is reached, or this request "
                "could exceed it."
                if period
                else f"This API key's spend limit of {cap} in all is reached, or this "
                "request could exceed it."
            )
            code = "key_spend_limit_reached"
        headers = []
        if math.isfinite(reset_at):
            headers = [(b"x-gatewayz-limit-resets-at", str(int(reset_at)).encode())]
        super().__init__(403, message, type="permission_error", code=code, headers=headers)


class RateLimited(GatewayError):
    def __init__(self, limit: Limit, amount: int, reset_at: float, now: float) -> None:
        wait = max(1, math.ceil(reset_at - now))
        whose = {"key": "this API key", "user": "your account", "system": "Gatewayz"}[limit.scope]
        if limit.kind == "concurrent":
            message = f"Too many concurrent requests for {whose}: the limit is {limit.cap}."
        elif amount > limit.cap:
            message = (
                f"This request's estimated {amount} tokens exceed the limit of "
                f"{limit.cap} {WORDS[limit.kind]} for {whose}; lower max_tokens."
            )
        else:
            message = (
                f"Rate limit reached for {whose}: {limit.cap} {WORDS[limit.kind]}. "
                f"Retry in {wait} s."
            )
        super().__init__(
            429,
            message,
            type="rate_limit_error",
            code="rate_limit_exceeded",
            headers=[(b"retry-after", str(wait).encode())],
        )


@dataclass(slots=True)
class Admission:
    """One request's rate-limit counters, as checked at admission and kept for settlement."""

    request_id: str
    plan: LimitPlan
    counters: list[str]
    amounts: list[int]  # 1 request, the estimated tokens, or the micro-credits held
    estimated_tokens: int
    admitted_at: float
    remaining: list[int] = field(default_factory=list)
    held_micro: int = 0
    # Admitted by this process's own counters and a database hold, Redis being unreachable
    # (gateway.guards.credit): settled the same way.
    local: bool = False

    def script_args(self) -> list[int]:
        """(cap, amount, ttl, seed) per limit, as the ADMIT script reads them."""
        args: list[int] = []
        for planned, amount in zip(self.plan.limits, self.amounts, strict=True):
            args += (planned.limit.cap, amount, planned.ttl, planned.seed)
        return args

    def refusal(self, index: int, now: float) -> GatewayError:
        planned = self.plan.limits[index]
        reset_at = planned.reset_at(self.admitted_at)
        if planned.limit.kind in KEY_CAPS:
            return KeyCapReached(planned.limit, reset_at)
        return RateLimited(planned.limit, self.amounts[index], reset_at, now)

    def corrections(self, actual_tokens: int, actual_cost: Decimal) -> list[tuple[str, int]]:
        """What settlement adds to the token and spend counters: actual minus estimated."""
        token_delta = actual_tokens - self.estimated_tokens
        spend_delta = micro_credits(actual_cost) - self.held_micro
        out = []
        for counter, planned in zip(self.counters, self.plan.limits, strict=True):
            delta = {"tokens": token_delta, "spend": spend_delta}.get(planned.unit, 0)
            if delta:
                out.append((counter, delta))
        return out

    def concurrency_counters(self) -> list[str]:
        return [c for c, p in zip(self.counters, self.plan.limits, strict=True) if not p.window]

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's x-ratelimit-* headers, for the tightest request and token limits."""
        out: list[tuple[bytes, bytes]] = []
        remaining = self.remaining
        for group in self.plan.header_groups:
            at = 0
            if len(group.indices) > 1:
                at = min(range(len(group.indices)), key=lambda j: remaining[group.indices[j]])
            i = group.indices[at]
            window = self.plan.limits[i].window
            limit_name, remaining_name, reset_name = group.names
            out += (
                (limit_name, group.caps[at]),
                (remaining_name, str(max(remaining[i], 0)).encode()),
                (reset_name, b"%ds" % math.ceil(window - self.admitted_at % window)),
            )
        return out

    def anthropic_headers(self) -> list[tuple[bytes, bytes]]:
        """The same limits under Anthropic's names (`anthropic-ratelimit-*`), the reset as
        the RFC 3339 instant the window ends, as Anthropic gives it, not a duration."""
        out: list[tuple[bytes, bytes]] = []
        remaining = self.remaining
        for group in self.plan.header_groups:
            at = 0
            if len(group.indices) > 1:
                at = min(range(len(group.indices)), key=lambda j: remaining[group.indices[j]])
            i = group.indices[at]
            reset_at = self.plan.limits[i].reset_at(self.admitted_at)
            limit_name, remaining_name, reset_name = group.anthropic_names
            out += (
                (limit_name, group.caps[at]),
                (remaining_name, str(max(remaining[i], 0)).encode()),
                (reset_name, _instant(int(reset_at))),
            )
        return out


@functools.lru_cache(maxsize=16)
def _instant(at: int) -> bytes:
    """A UTC instant in RFC 3339 (Anthropic's reset headers). Windows end on whole minutes,
    hours or days: the few instants in use are formatted once each."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at)).encode()


def admission_new(request_id: str, plan: LimitPlan, tokens: int, hold: Decimal) -> Admission:
    now = time.time()
    held = micro_credits(hold)
    counters = [p.counter(now) for p in plan.limits]
    by_unit = {"tokens": tokens, "spend": held}
    amounts = [by_unit.get(p.unit, 1) for p in plan.limits]
    return Admission(request_id, plan, counters, amounts, tokens, now, held_micro=held)


class LocalLimiter:
    """The same rules in one process (no Redis): counters in a dict, pruned as windows end.
    Checking and counting happen with no await in between, so they are atomic here."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.expiry: dict[str, float] = {}
        self.in_flight: dict[str, dict[str, float]] = {}  # counter -> request id -> expires

    def _used(self, counter: str, planned: PlannedLimit, now: float) -> int:
        if not planned.window:
            flying = self.in_flight.setdefault(counter, {})
            for rid in [r for r, at in flying.items() if at <= now]:
                del flying[rid]
            return len(flying)
        if self.expiry.get(counter, now + 1) <= now:
            self.counts.pop(counter, None)
            self.expiry.pop(counter, None)
        return (
            self.counts.setdefault(counter, planned.seed)
            if planned.seed
            else (self.counts.get(counter, 0))
        )

    def admit(self, admission: Admission, expires_at: float) -> None:
        """Checks every limit, then counts the request in all of them (or raises)."""
        now = time.time()
        entries = list(
            zip(admission.counters, admission.plan.limits, admission.amounts, strict=True)
        )
        remaining = []
        for i, (counter, planned, amount) in enumerate(entries):
            used = self._used(counter, planned, now)
            if used + amount > planned.limit.cap:
                raise admission.refusal(i, now)
            remaining.append(planned.limit.cap - used - amount)
        admission.remaining = remaining
        for counter, planned, amount in entries:
            if not planned.window:
                self.in_flight[counter][admission.request_id] = expires_at
            else:
                self.counts[counter] = self.counts.get(counter, 0) + amount
                self.expiry[counter] = planned.reset_at(admission.admitted_at)

    def undo(self, admission: Admission) -> None:
        """Takes back an admission that then failed (its credit hold was refused)."""
        for counter, planned, amount in zip(
            admission.counters, admission.plan.limits, admission.amounts, strict=True
        ):
            if not planned.window:
                self.in_flight.get(counter, {}).pop(admission.request_id, None)
            elif counter in self.counts:
                self.counts[counter] = max(0, self.counts[counter] - amount)

    def settle(self, admission: Admission, actual_tokens: int, actual_cost: Decimal) -> None:
        for counter, delta in admission.corrections(actual_tokens, actual_cost):
            if counter in self.counts:
                self.counts[counter] = max(0, self.counts[counter] + delta)
        for counter in admission.concurrency_counters():
            self.in_flight.get(counter, {}).pop(admission.request_id, None)
