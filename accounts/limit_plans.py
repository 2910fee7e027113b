"""What a key's requests are subject to, worked out once when the key is loaded: its rate
limits and caps (with the counters that enforce them) and its priority class. The gateway
enforces them (gateway.guards.limits, gateway.guards.priority); docs/limits.md has the rules.
"""

from __future__ import annotations

import calendar
import math
import time
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from django.conf import settings

from core.redis_groups import group_budget, group_tag

# A key's priority class (ApiKey.priority): the order in which waiting requests get one of
# a process's upstream slots (gateway.guards.priority).
PRIORITIES = {"critical": 0, "high": 1, "default": 2, "low": 3}
DEFAULT_PRIORITY = PRIORITIES["default"]

MONTH, FOREVER = -1, -2  # windows that are not a number of seconds
# kind -> (what it counts, its window: seconds, MONTH or FOREVER; 0: in flight, no window)
KINDS = {
    "rpm": ("requests", 60),
    "rph": ("requests", 3600),
    "rpd": ("requests", 86400),
    "tpm": ("tokens", 60),
    "tpd": ("tokens", 86400),
    "concurrent": ("concurrent", 0),
    # The key's own caps (ApiKey.max_requests, spend_limit_*; no defaults).
    "requests_total": ("requests", FOREVER),
    "spend_day": ("spend", 86400),
    "spend_month": ("spend", MONTH),
    "spend_total": ("spend", FOREVER),
}
KEY_CAPS = frozenset({"requests_total", "spend_day", "spend_month", "spend_total"})
MICRO = 10**6  # spend is counted in micro-credits
PREFIX = "gwz:rl:"


@dataclass(frozen=True, slots=True)
class Limit:
    scope: str  # key | user | system
    kind: str  # one of KINDS
    cap: int


def limits_for(
    key_overrides: dict[str, int | None], account_overrides: dict[str, int | None] | None = None
) -> tuple[Limit, ...]:
    """The limits of a key: its own caps over the key defaults; its account's plan's over
    the user defaults (`account_overrides`); the system's defaults. A cap of 0 is no limit."""
    defaults = settings.GATEWAYZ_RATE_LIMITS
    limits = []
    for scope, overrides in (("key", key_overrides), ("user", account_overrides or {})):
        for kind in KINDS:
            own = overrides.get(kind)
            cap = own if own is not None else defaults[scope].get(kind, 0)
            if cap:
                limits.append(Limit(scope, kind, cap))
    limits.extend(Limit("system", k, c) for k, c in defaults["system"].items() if c)
    return tuple(limits)


@dataclass(frozen=True, slots=True)
class PlannedLimit:
    """A limit bound to its owner, with all that does not change per request worked out
    once, when the key is loaded: per request only the window is added to the counter."""

    limit: Limit
    base: str  # the counter's key without its window
    window: int  # seconds, MONTH or FOREVER; 0: concurrency (requests in flight)
    unit: str  # requests | tokens | spend | concurrent
    ttl: int  # the counter's TTL for the ADMIT script; 0: concurrency; -1: none
    seed: int = 0  # a lifetime counter's count so far, from the request log

    def counter(self, now: float) -> str:
        if self.window > 0:
            return f"{self.base}:{int(now // self.window)}"
        if self.window == MONTH:
            month = time.gmtime(now)
            return f"{self.base}:{month.tm_year}{month.tm_mon:02d}"
        return self.base

    def reset_at(self, now: float) -> float:
        if self.window > 0:
            return (math.floor(now / self.window) + 1) * self.window
        if self.window == MONTH:
            month = time.gmtime(now)
            year, next_month = divmod(month.tm_year * 12 + month.tm_mon, 12)
            return float(calendar.timegm((year, next_month + 1, 1, 0, 0, 0)))
        return math.inf if self.window == FOREVER else now + 1


@dataclass(frozen=True, slots=True)
class HeaderGroup:
    """One family of rate-limit headers (requests or tokens): the header names, and the
    limits it may report (the tightest one at the time is reported)."""

    names: tuple[bytes, bytes, bytes]  # limit, remaining, reset: OpenAI's x-ratelimit-*
    indices: tuple[int, ...]  # into the plan's limits
    caps: tuple[bytes, ...]  # each limit's cap, as the header says it
    anthropic_names: tuple[bytes, bytes, bytes]  # the same, as Anthropic names them


@dataclass(frozen=True, slots=True)
class LimitPlan:
    """The limits a key's requests count against, and how their headers are made."""

    limits: tuple[PlannedLimit, ...] = ()
    header_groups: tuple[HeaderGroup, ...] = ()


def _ttl(window: int) -> int:
    if window > 0:
        return window + 60
    return {0: 0, MONTH: 32 * 86400, FOREVER: -1}[window]


def plan_for(
    limits: tuple[Limit, ...], key_id: int, user_id: int, seeds: dict[str, int] | None = None
) -> LimitPlan:
    """`seeds`: the lifetime counters' counts so far (kind -> count)."""
    owners = {"key": key_id, "user": user_id, "system": 0}
    # The customer's key group (core.redis_groups): its counters share the slot of its
    # credit, so the admission script stays on one shard; a system-wide cap is shared out.
    tag = group_tag(user_id)
    planned = []
    for limit in limits:
        unit, window = KINDS[limit.kind]
        if limit.scope == "system":
            limit = Limit(limit.scope, limit.kind, group_budget(limit.cap))
        base = f"{PREFIX}{tag}{limit.scope}:{owners[limit.scope]}:{limit.kind}"
        seed = (seeds or {}).get(limit.kind, 0) if window == FOREVER else 0
        planned.append(PlannedLimit(limit, base, window, unit, _ttl(window), seed))
    groups = []
    for unit, suffix in (("requests", b"requests"), ("tokens", b"tokens")):
        indices = tuple(i for i, p in enumerate(planned) if p.window > 0 and p.unit == unit)
        if indices:
            names = (
                b"x-ratelimit-limit-" + suffix,
                b"x-ratelimit-remaining-" + suffix,
                b"x-ratelimit-reset-" + suffix,
            )
            anthropic_names = (
                b"anthropic-ratelimit-" + suffix + b"-limit",
                b"anthropic-ratelimit-" + suffix + b"-remaining",
                b"anthropic-ratelimit-" + suffix + b"-reset",
            )
            caps = tuple(str(planned[i].limit.cap).encode() for i in indices)
            groups.append(HeaderGroup(names, indices, caps, anthropic_names))
    return LimitPlan(tuple(planned), tuple(groups))


NO_LIMITS = LimitPlan()


def micro_credits(amount: Decimal) -> int:
    """Credits as whole micro-credits, rounded up: a spend limit is never overshot."""
    return int((amount * MICRO).to_integral_value(rounding=ROUND_CEILING))
