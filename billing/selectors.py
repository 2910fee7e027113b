from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
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


@dataclass(frozen=True, slots=True)
class BalanceView:
    """A customer's credit as they are shown it (GET /user/balance, the dashboard)."""

    balance: Decimal
    available: Decimal  # what can be spent now
    allowance: Decimal  # of the balance: the plan's, spent first, gone at the period's end
    allowance_expires_at: datetime | None
    purchased: Decimal  # of the balance: bought or granted

    @property
    def held(self) -> Decimal:
        """Reserved by requests in flight (with Redis, also charges a moment from reaching
        the ledger)."""
        return self.balance - self.available


def balance_of(*, user: User) -> BalanceView:
    account = credit_account_of(user=user)
    return BalanceView(
        balance=account.balance,
        available=credit_available(user=user, account=account),
        allowance=account.allowance,
        allowance_expires_at=account.allowance_expires_at,
        purchased=account.purchased,
    )
