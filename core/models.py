"""The cache-invalidation events: how a change made anywhere reaches every gateway process's
caches (docs/request-path.md, "Cache invalidation")."""

from __future__ import annotations

from collections.abc import Iterable

from django.db import models, transaction
from django.db.models.functions import Now
from django.dispatch import Signal

# Sent once a transaction that announced invalidations commits: kind=, values=. (The shared
# key cache, gateway.keycache_shared, deletes its copies of the keys concerned.)
invalidations_committed = Signal()


class CacheInvalidation(models.Model):
    """An event every gateway process polls for, to drop what it cached about a key or the
    catalog. Written in the same transaction as the change it announces, so it becomes
    visible exactly when the change does, in every process and replica."""

    class Kind(models.TextChoices):
        API_KEY = "api_key"
        CATALOG = "catalog"
        USER = "user"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    value = models.CharField(max_length=100, blank=True)
    # The database's clock, not a process's: pollers compare against the same clock.
    created_at = models.DateTimeField(db_default=Now(), db_index=True)

    class Meta:
        db_table = "gateway_cacheinvalidation"  # made by the gateway app, where it began

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def invalidation_announce(kind: str, value: str = "") -> None:
    invalidations_announce(kind, [value])


def invalidations_announce(kind: str, values: Iterable[str]) -> None:
    """Announces changes of `kind` (in the caller's transaction); once it commits,
    `invalidations_committed` tells the caches that listen (the shared key cache)."""
    values = list(values)
    CacheInvalidation.objects.bulk_create(CacheInvalidation(kind=kind, value=v) for v in values)
    transaction.on_commit(
        lambda: invalidations_committed.send(CacheInvalidation, kind=kind, values=values)
    )
