"""The hot path's view of API keys: a process-local map from digest to identity.

Entries are dropped when a CacheInvalidation event for the key (or its user) arrives (see
gateway.invalidation), so a revoked key stops working in every process within one poll.
Unknown digests are remembered briefly too, so a flood of bad keys cannot flood the database.
While the database cannot be reached, entries are kept (within the bound the poller sets),
and a key not cached here is taken from the shared key cache in Redis if a process put it
there (gateway.keycache_shared); else the lookup fails and the request gets a 503.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import orjson
from django.conf import settings
from django.db.models import Sum

from accounts.limit_plans import (
    DEFAULT_PRIORITY,
    MICRO,
    NO_LIMITS,
    PRIORITIES,
    LimitPlan,
    limits_for,
    micro_credits,
    plan_for,
)
from accounts.models import ApiKey
from accounts.restrictions import KeyRestrictions, restrictions_of
from billing.models import RequestLog
from core.asyncdb import db_call
from core.outage import DATABASE_UNREACHABLE
from gateway.keycache_shared import SharedKeyCache
from providers.byok import provider_keys_open, provider_keys_sealed

NEGATIVE_TTL_SECONDS = 30.0
MAX_ENTRIES = 100_000


@dataclass(frozen=True, slots=True)
class KeyIdentity:
    key_id: int
    user_id: int
    digest: str
    expires_at: float | None  # unix time
    limits: LimitPlan = NO_LIMITS  # the rate limits its requests count against
    priority: int = DEFAULT_PRIORITY  # gateway.guards.priority
    restrictions: KeyRestrictions | None = None  # None: unrestricted
    # The user's own provider keys (BYOK), by provider slug, decrypted; None: none.
    provider_keys: dict[str, str] | None = None
    # Why the account is suspended (its keys refused with a 403); blank: it is not.
    suspended: str = ""

    def expired(self, now: float) -> bool:
        return self.expires_at is not None and now >= self.expires_at


RESTRICTION_FIELDS = ("allowed_ips", "allowed_referrers", "allowed_models", "scopes")
LIMIT_FIELDS = {kind: f"limit_{kind}" for kind in ("rpm", "rph", "rpd", "tpm", "tpd", "concurrent")}
CAP_FIELDS = {
    "requests_total": "max_requests",
    "spend_day": "spend_limit_day",
    "spend_month": "spend_limit_month",
    "spend_total": "spend_limit_total",
}
PLAN_FIELDS = {kind: f"user__plan__{name}" for kind, name in LIMIT_FIELDS.items()}
LOADED_FIELDS = (
    *LIMIT_FIELDS.values(),
    *CAP_FIELDS.values(),
    *RESTRICTION_FIELDS,
    *PLAN_FIELDS.values(),
    "user__plan__priority",
    "user__suspended_at",
    "user__suspension_reason",
)


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


def _record(digest: str) -> dict[str, Any] | None:
    """What the database says of an active key: plain JSON data, which the shared key cache
    may copy (the user's provider keys stay encrypted in it)."""
    row = (
        ApiKey.objects.filter(digest=digest, revoked_at__isnull=True, user__is_active=True)
        .values("id", "user_id", "expires_at", "priority", *LOADED_FIELDS)
        .first()
    )
    if row is None:
        return None
    caps = _caps(row)
    # The key's own priority, or else its account's plan's.
    priority = row["priority"]
    if priority == "default" and row["user__plan__priority"]:
        priority = row["user__plan__priority"]
    return {
        "key_id": row["id"],
        "user_id": row["user_id"],
        "expires_at": row["expires_at"].timestamp() if row["expires_at"] else None,
        "limits": {**{kind: row[name] for kind, name in LIMIT_FIELDS.items()}, **caps},
        "plan_limits": {kind: row[name] for kind, name in PLAN_FIELDS.items()},
        "seeds": _lifetime_seeds(row["id"], caps),
        "priority": priority,
        "restrictions": [row[name] for name in RESTRICTION_FIELDS],
        "provider_keys": provider_keys_sealed(row["user_id"]),
        "suspended": (row["user__suspension_reason"] or "suspended")
        if row["user__suspended_at"]
        else "",
    }


def _identity(digest: str, record: dict[str, Any]) -> KeyIdentity:
    key_id, user_id = record["key_id"], record["user_id"]
    limits = limits_for(record["limits"], record["plan_limits"])  # its account's plan's
    plan = plan_for(limits, key_id, user_id, record["seeds"])
    priority = PRIORITIES.get(record["priority"], DEFAULT_PRIORITY)
    restrictions = restrictions_of(*record["restrictions"])
    provider_keys = provider_keys_open(record["provider_keys"]) or None
    return KeyIdentity(
        key_id,
        user_id,
        digest,
        record["expires_at"],
        plan,
        priority,
        restrictions,
        provider_keys,
        record.get("suspended", ""),  # a copy shared by a process of the release before
    )


def _load(digest: str) -> tuple[KeyIdentity, bytes] | None:
    """The key from the database, and its copy for the shared key cache."""
    record = _record(digest)
    if record is None:
        return None
    return _identity(digest, record), orjson.dumps(record)


class KeyCache:
    """`shared`: the shared key cache in Redis (with REDIS_URL), read only when the database
    cannot be reached. For it the cache keeps each key's copy, and notes which keys are used,
    so that the poller can keep their copies alive (`shared_refresh`)."""

    def __init__(self) -> None:
        self._known: dict[str, KeyIdentity] = {}
        self._unknown: dict[str, float] = {}  # digest -> when the miss expires
        # Bumped by every eviction: a load that raced with one is used once, not cached.
        self._generation = 0
        self._shared: SharedKeyCache | None = None
        self._sharing = bool(settings.REDIS_URL)
        self._copies: dict[str, bytes] = {}  # digest -> its copy (with `shared` only)
        self._used: set[str] = set()  # keys served since the last refresh of their copies
        # Taken from the shared key cache: kept only until the database answers again.
        self._borrowed: set[str] = set()
        self._writes: set[asyncio.Task[None]] = set()

    def shared(self) -> SharedKeyCache | None:
        if self._shared is None and self._sharing:
            ttl = settings.GATEWAYZ_SHARED_KEY_CACHE_SECONDS
            self._shared = SharedKeyCache(settings.REDIS_URL, ttl)
        return self._shared

    async def close(self) -> None:
        """Closes the shared cache's connection (the process is stopping)."""
        shared, self._shared = self._shared, None
        if shared is not None:
            await shared.close()

    async def lookup(self, digest: str) -> KeyIdentity | None:
        """Raises DATABASE_UNREACHABLE (core.outage) for a key neither this process nor
        the shared key cache holds while the database cannot be reached."""
        identity = self._known.get(digest)
        if identity is not None:
            if self._sharing:
                self._used.add(digest)
            return identity
        miss_until = self._unknown.get(digest)
        if miss_until is not None and miss_until > time.monotonic():
            return None
        generation = self._generation
        borrowed = False
        try:
            loaded = await db_call(_load, digest)
        except DATABASE_UNREACHABLE:
            loaded = await self._from_shared(digest)
            if loaded is None:
                raise
            borrowed = True
        if generation != self._generation:
            return loaded[0] if loaded else None
        if len(self._known) + len(self._unknown) >= MAX_ENTRIES:
            self.clear()
        if loaded is None:
            self._unknown[digest] = time.monotonic() + NEGATIVE_TTL_SECONDS
            return None
        identity, copy = loaded
        self._known[digest] = identity
        if borrowed:
            self._borrowed.add(digest)
        elif self._sharing:
            self._copies[digest] = copy
            self._share({digest: copy})
        return identity

    async def _from_shared(self, digest: str) -> tuple[KeyIdentity, bytes] | None:
        shared = self.shared()
        copy = await shared.get(digest) if shared is not None else None
        if copy is None:
            return None
        return _identity(digest, orjson.loads(copy)), copy

    def _share(self, copies: dict[str, bytes]) -> None:
        """Writes copies in the background: the request does not wait for Redis."""
        shared = self.shared()
        if shared is not None and copies:
            task = asyncio.create_task(shared.put(copies))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

    def shared_refresh(self) -> None:
        """Rewrites the copies of the keys served since the last refresh (the poller calls
        it while it reads invalidations: a copy is renewed only by a process that would
        have heard of the key's revocation)."""
        used, self._used = self._used, set()
        self._share({d: self._copies[d] for d in used if d in self._copies})

    def borrowed_forget(self) -> None:
        """Drops the keys taken from the shared key cache (the poller calls it once the
        database answers): a copy may be older than this process's last poll, so the
        invalidations it replays might not cover it; the database says again."""
        if self._borrowed:
            self._generation += 1
            for digest in self._borrowed:
                self._known.pop(digest, None)
            self._borrowed.clear()

    async def shared_forget(self, digests: list[str]) -> None:
        shared = self.shared()
        if shared is not None:
            await shared.forget(digests)

    def digests_of(self, user_id: int) -> list[str]:
        return [d for d, i in self._known.items() if i.user_id == user_id]

    def forget_key(self, digest: str) -> None:
        self._generation += 1
        self._known.pop(digest, None)
        self._unknown.pop(digest, None)
        self._copies.pop(digest, None)

    def forget_user(self, user_id: int) -> None:
        self._generation += 1
        for digest in self.digests_of(user_id):
            del self._known[digest]
            self._copies.pop(digest, None)

    def clear(self) -> None:
        self._generation += 1
        self._known.clear()
        self._unknown.clear()
        self._copies.clear()
        self._used.clear()
        self._borrowed.clear()


key_cache = KeyCache()
