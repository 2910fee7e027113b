"""The shared key cache: copies of loaded keys in Redis (with REDIS_URL), for a process that
meets a key it has not cached while the database is out of reach (gateway.keycache).

A copy holds what the key's row and its account say (limits, caps, restrictions, priority,
expiry) and the user's own provider keys as the database stores them, encrypted under the
credential key ring, which Redis never sees; it is found by the key's HMAC digest, as the
database finds the key. Nothing in it lets anyone call the gateway or a provider.

Copies are written when a process loads a key from the database, and rewritten by the
processes that use the key while their invalidation poll works (gateway.invalidation); each
expires GATEWAYZ_SHARED_KEY_CACHE_SECONDS after its last write. A change announced to every
process (core.models.CacheInvalidation) deletes the copies it concerns when it commits,
and every process deletes them again when its poll applies the change: a copy outlives a
revocation by at most a poll, or, were Redis unreachable for both deletions, its lifetime.

Read only while the database cannot be reached: the database is the truth.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Iterable, Mapping
from typing import Any

import hiredis
from django.conf import settings

from core.redis_cluster import hot_wire
from core.redis_sync import UNREACHABLE, sync_client
from core.redis_wire import RedisWireError

log = logging.getLogger(__name__)
PREFIX = "gwz:key:"


def _name(digest: str) -> str:
    return PREFIX + digest


class SharedKeyCache:
    """The hot path's side: async, on a connection of its own (used on cache misses and
    by the poller, never per request)."""

    def __init__(self, url: str, ttl: int) -> None:
        self.wire = hot_wire(url, timeout=settings.GATEWAYZ_REDIS_TIMEOUT_SECONDS)
        self.ttl = ttl

    async def get(self, digest: str) -> bytes | None:
        """The key's copy, or None (none, or Redis unreachable too)."""
        try:
            copy = await self.wire.call("GET", _name(digest))
        except (RedisWireError, hiredis.ReplyError) as exc:
            log.warning("the shared key cache cannot be read: %s", exc)
            return None
        return bytes(copy) if copy else None

    async def put(self, copies: Mapping[str, bytes]) -> None:
        await self._all(
            self.wire.call("SET", _name(digest), copy, "EX", self.ttl)
            for digest, copy in copies.items()
        )

    async def forget(self, digests: Iterable[str]) -> None:
        names = [_name(digest) for digest in digests]
        if names:
            # One DEL each: on a Cluster the names are in different slots.
            await self._all(self.wire.call("DEL", name) for name in names)

    async def _all(self, calls: Iterable[Awaitable[Any]]) -> None:
        """Best effort: a copy not written is a key not served from Redis during an outage;
        one not deleted expires (and was deleted where the change was made)."""
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            log.warning(
                "the shared key cache: %d of %d writes failed: %s",
                len(failed),
                len(results),
                failed[0],
            )

    async def close(self) -> None:
        await self.wire.close()


def shared_copies_forget(kind: str, values: Iterable[str], **_: object) -> None:
    """Deletes the copies that announced changes concern: a key's (`api_key`: its digest),
    or every key of a user's (`user`: the user's id). Called when the change commits."""
    if not settings.REDIS_URL:
        return
    from accounts.models import ApiKey

    if kind == "api_key":
        digests = list(values)
    elif kind == "user":
        users = [int(value) for value in values]
        digests = list(ApiKey.objects.filter(user_id__in=users).values_list("digest", flat=True))
    else:
        return
    if not digests:
        return
    try:
        sync_client().delete(*(_name(digest) for digest in digests))
    except UNREACHABLE as exc:
        ttl = settings.GATEWAYZ_SHARED_KEY_CACHE_SECONDS
        log.warning(
            "the shared key cache is unreachable (%s): %d copies expire by themselves within %d s",
            exc,
            len(digests),
            ttl,
        )
