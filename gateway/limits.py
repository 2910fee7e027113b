"""Rate limits: what applies to a request, the counters that enforce them, the 429 and the
`x-ratelimit-*` headers.

Enforcement is atomic with the credit hold: in Redis, one script checks every limit and the
credit, then counts the request in all of them or in none (billing.redis_credit, ADMIT); so
limits hold exactly across processes and replicas. Without Redis (the embedded default) the
same rules run in-process (`LocalLimiter`), exact within the one process that serves.

Windows are fixed: the current UTC minute or day. Tokens count an estimate at admission
(prompt bytes ÷ 4, plus the output the request allows, as OpenAI counts) and are corrected
to the actual count at settlement, in the windows of admission. Concurrency counts requests
admitted and not yet settled; an entry a crashed process left behind expires with its hold.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.conf import settings

from gateway.errors import GatewayError

# kind -> (what it counts, window in seconds; 0: in flight, no window)
KINDS = {
    "rpm": ("requests", 60),
    "rpd": ("requests", 86400),
    "tpm": ("tokens", 60),
    "tpd": ("tokens", 86400),
    "concurrent": ("concurrent", 0),
}
WORDS = {
    "rpm": "requests per minute",
    "rpd": "requests per day",
    "tpm": "tokens per minute",
    "tpd": "tokens per day",
    "concurrent": "concurrent requests",
}
PREFIX = "gwz:rl:"


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # key | user | system
    kind: str  # one of KINDS
    cap: int

    def counter(self, owner: int, now: float) -> str:
        window = KINDS[self.kind][1]
        base = f"{PREFIX}{self.scope}:{owner}:{self.kind}"
        return f"{base}:{int(now // window)}" if window else base

    def window_end(self, now: float) -> float:
        window = KINDS[self.kind][1]
        return (math.floor(now / window) + 1) * window if window else now + 1


def limits_for(key_overrides: dict[str, int | None]) -> tuple[Limit, ...]:
    """The limits of a key: its own caps over the key defaults, then the user's and the
    system's defaults. A cap of 0 is no limit."""
    defaults = settings.GATEWAYZ_RATE_LIMITS
    limits = []
    for kind in KINDS:
        own = key_overrides.get(kind)
        cap = own if own is not None else defaults["key"][kind]
        if cap:
            limits.append(Limit("key", kind, cap))
    for scope in ("user", "system"):
        limits.extend(Limit(scope, k, c) for k, c in defaults[scope].items() if c)
    return tuple(limits)


@dataclass(slots=True)
class Check:
    """One limit as counted for one request."""

    limit: Limit
    counter: str
    amount: int  # 1 request, or the estimated tokens; 1 for concurrency
    remaining: int = 0
    reset_at: float = 0.0


@dataclass(slots=True)
class Admission:
    """The limit checks of one admitted request, kept for its settlement."""

    request_id: str
    checks: list[Check] = field(default_factory=list)
    estimated_tokens: int = 0
    admitted_at: float = 0.0

    def token_corrections(self, actual_tokens: int) -> list[tuple[str, int]]:
        delta = actual_tokens - self.estimated_tokens
        return [
            (c.counter, delta) for c in self.checks if KINDS[c.limit.kind][0] == "tokens" and delta
        ]

    def concurrency_counters(self) -> list[str]:
        return [c.counter for c in self.checks if c.limit.kind == "concurrent"]

    def headers(self) -> list[tuple[bytes, bytes]]:
        """OpenAI's x-ratelimit-* headers, for the tightest request and token limits."""
        out: list[tuple[bytes, bytes]] = []
        for counts, suffix in (("requests", b"requests"), ("tokens", b"tokens")):
            checks = [c for c in self.checks if KINDS[c.limit.kind][0] == counts]
            if not checks:
                continue
            tightest = min(checks, key=lambda c: c.remaining)
            reset = max(0.0, tightest.reset_at - self.admitted_at)
            out += [
                (b"x-ratelimit-limit-" + suffix, str(tightest.limit.cap).encode()),
                (b"x-ratelimit-remaining-" + suffix, str(max(tightest.remaining, 0)).encode()),
                (b"x-ratelimit-reset-" + suffix, f"{reset:.0f}s".encode()),
            ]
        return out


def admission_new(
    request_id: str, key_id: int, user_id: int, limits: Iterable[Limit], tokens: int
) -> Admission:
    now = time.time()
    owners = {"key": key_id, "user": user_id, "system": 0}
    checks = []
    for limit in limits:
        amount = tokens if KINDS[limit.kind][0] == "tokens" else 1
        check = Check(limit, limit.counter(owners[limit.scope], now), amount)
        check.reset_at = limit.window_end(now)
        checks.append(check)
    return Admission(request_id, checks, tokens, now)


class RateLimited(GatewayError):
    def __init__(self, check: Check, now: float) -> None:
        limit = check.limit
        wait = max(1, math.ceil(check.reset_at - now))
        whose = {"key": "this API key", "user": "your account", "system": "Gatewayz"}[limit.scope]
        if limit.kind == "concurrent":
            message = f"Too many concurrent requests for {whose}: the limit is {limit.cap}."
        elif check.amount > limit.cap:
            message = (
                f"This request's estimated {check.amount} tokens exceed the limit of "
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


class LocalLimiter:
    """The same rules in one process (no Redis): counters in a dict, pruned as windows end.
    Checking and counting happen with no await in between, so they are atomic here."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.expiry: dict[str, float] = {}
        self.in_flight: dict[str, dict[str, float]] = {}  # counter -> request id -> expires

    def _used(self, check: Check, now: float) -> int:
        if check.limit.kind == "concurrent":
            flying = self.in_flight.setdefault(check.counter, {})
            for rid in [r for r, at in flying.items() if at <= now]:
                del flying[rid]
            return len(flying)
        if self.expiry.get(check.counter, now + 1) <= now:
            self.counts.pop(check.counter, None)
            self.expiry.pop(check.counter, None)
        return self.counts.get(check.counter, 0)

    def admit(self, admission: Admission, expires_at: float) -> None:
        """Checks every limit, then counts the request in all of them (or raises)."""
        now = time.time()
        for check in admission.checks:
            used = self._used(check, now)
            if used + check.amount > check.limit.cap:
                raise RateLimited(check, now)
            check.remaining = check.limit.cap - used - check.amount
        for check in admission.checks:
            if check.limit.kind == "concurrent":
                self.in_flight[check.counter][admission.request_id] = expires_at
            else:
                self.counts[check.counter] = self.counts.get(check.counter, 0) + check.amount
                self.expiry[check.counter] = check.reset_at

    def undo(self, admission: Admission) -> None:
        """Takes back an admission that then failed (its credit hold was refused)."""
        for check in admission.checks:
            if check.limit.kind == "concurrent":
                self.in_flight.get(check.counter, {}).pop(admission.request_id, None)
            elif check.counter in self.counts:
                self.counts[check.counter] = max(0, self.counts[check.counter] - check.amount)

    def settle(self, admission: Admission, actual_tokens: int) -> None:
        for counter, delta in admission.token_corrections(actual_tokens):
            if counter in self.counts:
                self.counts[counter] = max(0, self.counts[counter] + delta)
        for counter in admission.concurrency_counters():
            self.in_flight.get(counter, {}).pop(admission.request_id, None)


def redis_args(admission: Admission) -> tuple[list[str], list[int]]:
    """The counters (KEYS) and (cap, amount, ttl) triplets (ARGV) for the ADMIT script."""
    keys: list[str] = []
    args: list[int] = []
    for check in admission.checks:
        keys.append(check.counter)
        window = KINDS[check.limit.kind][1]
        ttl = window + 60 if window else settings.GATEWAYZ_HOLD_TTL_SECONDS
        args += [check.limit.cap, check.amount, ttl if window else -ttl]
    return keys, args
