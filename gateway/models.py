from __future__ import annotations

from collections.abc import Iterable

from django.db import models, transaction
from django.db.models.functions import Now


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

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def invalidation_announce(kind: str, value: str = "") -> None:
    invalidations_announce(kind, [value])


def invalidations_announce(kind: str, values: Iterable[str]) -> None:
    """Announces changes of `kind` (in the caller's transaction); once it commits, the
    shared key cache's copies they concern are deleted too (accounts.keycache_shared)."""
    values = list(values)
    CacheInvalidation.objects.bulk_create(CacheInvalidation(kind=kind, value=v) for v in values)

    def forget_copies() -> None:
        from accounts.keycache_shared import shared_copies_forget

        shared_copies_forget(kind, values)

    transaction.on_commit(forget_copies)
