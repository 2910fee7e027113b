"""The hot path's view of API keys: a process-local map from digest to identity.

Entries are dropped when a CacheInvalidation event for the key (or its user) arrives (see
gateway.invalidation), so a revoked key stops working in every process within one poll.
Unknown digests are remembered briefly too, so a flood of bad keys cannot flood the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import Sum

from accounts.models import ApiKey
from accounts.restrictions import KeyRestrictions, restrictions_of
from config.asyncdb import db_call
from gateway.limits import MICRO, NO_LIMITS, LimitPlan, limits_for, micro_credits, plan_for
from gateway.priority import DEFAULT_PRIORITY, PRIORITIES
from monitoring.models import RequestLog
from providers.byok import provider_keys_load

NEGATIVE_TTL_SECONDS = 30.0
MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    key_id: int
    user_id: int
    digest: str
    expires_at: float | None  # unix time
    limits: LimitPlan = NO_LIMITS  # the rate limits its requests count against
    priority: int = DEFAULT_PRIORITY  # gateway.priority
    restrictions: KeyRestrictions | None = None  # None: unrestricted
    # The user's own provider keys (BYOK), by provider slug, decrypted; None: none.
    provider_keys: dict[str, str] | None = None

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


RESTRICTION_FIELDS = ("allowed_ips", "allowed_referrers", "allowed_models", "scopes")
LIMIT_FIELDS = {kind: f"limit_{kind}" for kind in ("rpm", "rph", "rpd", "tpm", "tpd", "concurrent")}
CAP_FIELDS = {"requests_total": "max_requests", "spend_day": "spend_limit_day",
              "spend_month": "spend_limit_month", "spend_total": "spend_limit_total"}  # fmt: skip
PLAN_FIELDS = {kind: f"user__plan__{name}" for kind, name in LIMIT_FIELDS.items()}
LOADED_FIELDS = (*LIMIT_FIELDS.values(), *CAP_FIELDS.values(), *RESTRICTION_FIELDS,
                 *PLAN_FIELDS.values(), "user__plan__priority")  # fmt: skip


def _caps(row: dict[str, Any]) -> dict[str, int | None]:
    """The key's own caps as the limits count them (spend in micro-credits)."""
    caps: dict[str, int | None] = {"requests_total": row["max_requests"]}
    for kind in ("spend_day", "spend_month", "spend_total"):
        limit = row[CAP_FIELDS[kind]]
        caps[kind] = None if limit is None else int(limit * MICRO)
    return caps


def _lifetime_seeds(key_id: int, caps: dict[str, int | None]) -> dict[str, int]:
    """What the key's lifetime counters stand at, from the request log: where they start
    if Redis has lost them (or, without Redis, when the process starts)."""
    seeds = {}
    served = RequestLog.objects.filter(api_key_id=key_id)
    if caps["requests_total"]:
        seeds["requests_total"] = served.filter(status=200).count()
    if caps["spend_total"]:
        spent = served.aggregate(total=Sum("cost"))["total"] or Decimal(0)
        seeds["spend_total"] = micro_credits(spent)
    return seeds


def _load(digest: str) -> KeyIdentity | None:
    row = (
        ApiKey.objects.filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .values("id", "user_id", "expires_at", "priority", *LOADED_FIELDS)
        .first()
    )
    if row is None:
        return None
    expires_at = row["expires_at"].timestamp() if row["expires_at"] else None
    caps = _caps(row)
    limits = limits_for(
        {**{kind: row[name] for kind, name in LIMIT_FIELDS.items()}, **caps},
        {kind: row[name] for kind, name in PLAN_FIELDS.items()},  # its account's plan's
    )
    plan = plan_for(limits, row["id"], row["user_id"], _lifetime_seeds(row["id"], caps))
    # The key's own priority, or else its account's plan's.
    named = row["priority"]
    if named == "default" and row["user__plan__priority"]:
        named = row["user__plan__priority"]
    priority = PRIORITIES.get(named, DEFAULT_PRIORITY)
    restrictions = restrictions_of(*(row[name] for name in RESTRICTION_FIELDS))
    provider_keys = provider_keys_load(row["user_id"]) or None
    return KeyIdentity(row["id"], row["user_id"], digest, expires_at, plan, priority, restrictions,
                       provider_keys)  # fmt: skip


class KeyCache:
    def __init__(self) -> None:
        self._known: dict[str, KeyIdentity] = {}
        self._unknown: dict[str, float] = {}  # digest -> when the miss expires
        # Bumped by every eviction: a load that raced with one is used once, not cached.
        self._generation = 0

    async def lookup(self, digest: str) -> KeyIdentity | None:
        identity = self._known.get(digest)
        if identity is not None:
            return identity
        miss_until = self._unknown.get(digest)
        if miss_until is not None and miss_until > time.monotonic():
            return None
        generation = self._generation
        identity = await db_call(_load, digest)
        if generation != self._generation:
            return identity
        if len(self._known) + len(self._unknown) >= MAX_ENTRIES:
            self.clear()
        if identity is None:
            self._unknown[digest] = time.monotonic() + NEGATIVE_TTL_SECONDS
        else:
            self._known[digest] = identity
        return identity

    def forget_key(self, digest: str) -> None:
        self._generation += 1
        self._known.pop(digest, None)
        self._unknown.pop(digest, None)

    def forget_user(self, user_id: int) -> None:
        self._generation += 1
        for digest in [d for d, i in self._known.items() if i.user_id == user_id]:
            del self._known[digest]

    def clear(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()


key_cache = KeyCache()
