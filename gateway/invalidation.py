"""Each gateway process polls CacheInvalidation and drops what it cached.

Events are read by the database's clock over a look-back window rather than by id, because
ids are handed out at insert and can commit out of order; the set of ids already applied
keeps each event from being applied twice. The window reaches back LOOKBACK before the last
poll that succeeded, so after an outage the first poll that succeeds replays every event
missed meanwhile (the rows are kept).

While polls fail (the database is out of reach) the process keeps serving what it cached:
its keys for up to GATEWAYZ_KEY_CACHE_BLIND_SECONDS after the last poll that succeeded
(the bound on how late a revocation made meanwhile reaches it), its catalog for as long as
the outage lasts. Keys it took from the shared key cache meanwhile are dropped once the
database answers again, to be loaded from it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from core.asyncdb import db_call
from core.models import CacheInvalidation
from gateway.keycache import key_cache
from providers.catalog import catalog_holder

log = logging.getLogger(__name__)
LOOKBACK = timedelta(seconds=30)
# A poll that takes this long counts as failed (a database that accepts and never answers).
POLL_TIMEOUT_SECONDS = 10.0

Event = tuple[int, str, str]


def _events_since(window: timedelta) -> list[Event]:
    rows = CacheInvalidation.objects.filter(created_at__gt=Now() - window).values_list(
        "id", "kind", "value"
    )
    return list(rows)


class InvalidationWatcher:
    def __init__(self) -> None:
        self._seen: set[int] = set()
        # When the last poll that succeeded was sent (this process's monotonic clock: the
        # window is a length of time, so the two clocks need not agree).
        self._polled_at = time.monotonic()
        self._refreshed_at = time.monotonic()  # the shared key cache's copies

    def apply(self, events: list[Event]) -> list[str]:
        """Drops what the new events concern; returns the keys whose shared copies go too."""
        current = {event_id for event_id, _, _ in events}
        gone: list[str] = []
        for event_id, kind, value in events:
            if event_id in self._seen:
                continue
            if kind == CacheInvalidation.Kind.API_KEY:
                key_cache.forget_key(value)
                gone.append(value)
            elif kind == CacheInvalidation.Kind.USER:
                user_id = int(value)
                gone += key_cache.digests_of(user_id)
                key_cache.forget_user(user_id)
            elif kind == CacheInvalidation.Kind.CATALOG:
                catalog_holder.invalidate()
        self._seen = current
        return gone

    async def poll(self) -> int:
        """One poll; returns the number of events applied."""
        sent = time.monotonic()
        window = LOOKBACK + timedelta(seconds=sent - self._polled_at)
        events = await asyncio.wait_for(db_call(_events_since, window), POLL_TIMEOUT_SECONDS)
        applied = len({event_id for event_id, _, _ in events} - self._seen)
        gone = self.apply(events)
        self._polled_at = sent
        key_cache.borrowed_forget()
        # The copies of what changed, deleted again here: one written just before the change
        # committed would otherwise outlive it.
        if gone:
            await key_cache.shared_forget(gone)
        refresh_every = settings.GATEWAYZ_SHARED_KEY_CACHE_SECONDS / 3
        if time.monotonic() - self._refreshed_at >= refresh_every:
            self._refreshed_at = time.monotonic()
            key_cache.shared_refresh()
        return applied

    def blind_for(self) -> float:
        return time.monotonic() - self._polled_at

    async def run(self) -> None:
        interval = settings.GATEWAYZ_INVALIDATION_POLL_SECONDS
        blind_limit = settings.GATEWAYZ_KEY_CACHE_BLIND_SECONDS
        failing = distrusted = False
        while True:
            try:
                applied = await self.poll()
                if failing:
                    log.warning("cache invalidation polling recovered; %d events replayed", applied)
                failing = distrusted = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    log.exception(
                        "cache invalidation polling failed; serving cached keys for "
                        "up to %d s, and the cached catalog",
                        blind_limit,
                    )
                failing = True
                if self.blind_for() > blind_limit:
                    # Revocations may have been missed for too long: keys must come from
                    # the database again (or the shared key cache, which expires too).
                    if not distrusted:
                        log.error(
                            "cache invalidation polling has failed for %d s: cached keys "
                            "are dropped",
                            blind_limit,
                        )
                    distrusted = True
                    key_cache.clear()
            await asyncio.sleep(interval)
