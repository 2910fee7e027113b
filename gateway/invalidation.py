"""Each gateway process polls CacheInvalidation and drops what it cached.

Events are read by the database's clock over a short look-back window rather than by id,
because ids are handed out at insert and can commit out of order; the set of ids already
applied keeps each event from being applied twice.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from django.conf import settings
from django.db.models.functions import Now

from accounts.keycache import key_cache
from config.asyncdb import db_call
from gateway.models import CacheInvalidation
from providers.catalog import catalog_holder

log = logging.getLogger(__name__)
LOOKBACK = timedelta(seconds=30)


def _recent_events() -> list[tuple[int, str, str]]:
    rows = CacheInvalidation.objects.filter(created_at__gt=Now() - LOOKBACK).values_list(
        "id", "kind", "value"
    )
    return list(rows)


class InvalidationWatcher:
    def __init__(self) -> None:
        self._seen: set[int] = set()
        self._primed = False

    def apply(self, events: list[tuple[int, str, str]]) -> None:
        current = {event_id for event_id, _, _ in events}
        for event_id, kind, value in events:
            if event_id in self._seen:
                continue
            # Events before this process started concern nothing it has cached yet.
            if self._primed:
                if kind == CacheInvalidation.Kind.API_KEY:
                    key_cache.forget_key(value)
                elif kind == CacheInvalidation.Kind.USER:
                    key_cache.forget_user(int(value))
                elif kind == CacheInvalidation.Kind.CATALOG:
                    catalog_holder.invalidate()
        self._seen = current
        self._primed = True

    async def run(self) -> None:
        interval = settings.GATEWAYZ_INVALIDATION_POLL_SECONDS
        failing = False
        while True:
            try:
                self.apply(await db_call(_recent_events))
                if failing:
                    log.warning("cache invalidation polling recovered")
                failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                if not failing:
                    log.exception("cache invalidation polling failed; serving cached state")
                failing = True
                # What we missed while blind is unknown: forget everything once back.
                key_cache.clear()
                catalog_holder.invalidate()
            await asyncio.sleep(interval)
