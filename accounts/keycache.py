"""The hot path's view of API keys: a process-local map from digest to identity.

Entries are dropped when a CacheInvalidation event for the key (or its user) arrives (see
gateway.invalidation), so a revoked key stops working in every process within one poll.
Unknown digests are remembered briefly too, so a flood of bad keys cannot flood the database.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from accounts.models import ApiKey
from accounts.restrictions import KeyRestrictions, restrictions_of
from config.asyncdb import db_call
from gateway.limits import NO_LIMITS, LimitPlan, limits_for, plan_for
from gateway.priority import DEFAULT_PRIORITY, PRIORITIES

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

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


RESTRICTION_FIELDS = ("allowed_ips", "allowed_referrers", "allowed_models", "scopes")
LIMIT_FIELDS = {kind: f"limit_{kind}" for kind in ("rpm", "rpd", "tpm", "tpd", "concurrent")}
LOADED_FIELDS = (*LIMIT_FIELDS.values(), *RESTRICTION_FIELDS)


def _load(digest: str) -> KeyIdentity | None:
    row = (
        ApiKey.objects.filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .values("id", "user_id", "expires_at", "priority", *LOADED_FIELDS)
        .first()
    )
    if row is None:
        return None
    expires_at = row["expires_at"].timestamp() if row["expires_at"] else None
    limits = limits_for({kind: row[name] for kind, name in LIMIT_FIELDS.items()})
    plan = plan_for(limits, row["id"], row["user_id"])
    priority = PRIORITIES.get(row["priority"], DEFAULT_PRIORITY)
    restrictions = restrictions_of(*(row[name] for name in RESTRICTION_FIELDS))
    return KeyIdentity(row["id"], row["user_id"], digest, expires_at, plan, priority, restrictions)


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
