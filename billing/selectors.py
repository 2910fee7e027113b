from __future__ import annotations

from django.db.models import QuerySet

from accounts.models import User
from billing.models import CreditAccount, LedgerEntry


def credit_account_of(*, user: User) -> CreditAccount:
    account, _ = CreditAccount.objects.get_or_create(user=user)
    return account


def ledger_entries_of(*, user: User) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(user=user)
