from __future__ import annotations

from decimal import Decimal
from typing import cast

from django.conf import settings
from django.db.models import QuerySet

from accounts.models import User
from billing.models import CreditAccount, LedgerEntry
from billing.redis_credit import (
    avail_key,
    from_pico,
)
from core.redis_sync import UNREACHABLE, sync_client


def credit_account_of(*, user: User) -> CreditAccount:
    account, _ = CreditAccount.objects.get_or_create(user=user)
    return account


def credit_available(*, user: User, account: CreditAccount) -> Decimal:
    """What the user can still spend right now. With Redis, its `avail` counter is the live
    figure (it already excludes in-flight holds and charges not yet in the ledger); while
    Redis is unreachable, the database's."""
    if settings.REDIS_URL:
        try:
            live = cast("bytes | None", sync_client().get(avail_key(user.pk)))
        except UNREACHABLE:
            live = None
        if live is not None:
            return from_pico(live)
    return account.available


def ledger_entries_of(*, user: User) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(user=user)
