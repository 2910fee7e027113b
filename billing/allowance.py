"""A plan's monthly allowance: credit granted for one billing period, spent before purchased
credit, and gone at the period's end (no roll-over).

It lives in the balance like any credit (so admission, in Redis or the database, needs no
second counter: what a request may spend is the same total), and `CreditAccount.allowance`
says how much of the balance it still is. Usage takes from it first (billing.usage_writer:
`allowance = max(allowance - cost, 0)` in the same UPDATE as the balance), so after any
number of concurrent requests it stands at exactly max(granted - spent, 0). At the period's
end what is left of it is taken out of the balance by a ledger entry."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from django.db import transaction
from django.utils import timezone

from billing.models import CreditAccount, LedgerEntry
from billing.services import ledger_entry_add


@transaction.atomic
def allowance_grant(
    *, user_id: int, amount: Decimal, expires_at: datetime, reference: str, memo: str
) -> bool:
    """Grants a period's allowance once per `reference` (a paid invoice): what is left of
    the period before expires first. Returns False if this reference was granted before."""
    if LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ALLOWANCE, reference=reference).exists():
        return False
    account, _ = CreditAccount.objects.select_for_update().get_or_create(user_id=user_id)
    allowance_end(account=account, reference=f"{reference}:replaces")
    ledger_entry_add(
        user_id=user_id,
        kind=LedgerEntry.Kind.ALLOWANCE,
        amount=amount,
        reference=reference,
        memo=memo,
    )
    CreditAccount.objects.filter(pk=account.pk).update(
        allowance=amount, allowance_expires_at=expires_at
    )
    return True


@transaction.atomic
def allowance_top_up(*, user_id: int, amount: Decimal, reference: str, memo: str) -> None:
    """Adds to the current period's allowance (an upgrade mid-period), keeping its end."""
    if (
        amount <= 0
        or LedgerEntry.objects.filter(kind=LedgerEntry.Kind.ALLOWANCE, reference=reference).exists()
    ):
        return
    account, _ = CreditAccount.objects.select_for_update().get_or_create(user_id=user_id)
    ledger_entry_add(
        user_id=user_id,
        kind=LedgerEntry.Kind.ALLOWANCE,
        amount=amount,
        reference=reference,
        memo=memo,
    )
    CreditAccount.objects.filter(pk=account.pk).update(allowance=account.allowance + amount)


def allowance_end(*, account: CreditAccount, reference: str) -> None:
    """Takes what is left of the allowance out of the balance (call under the row lock)."""
    account.refresh_from_db(fields=["allowance", "allowance_expires_at"])
    if account.allowance > 0:
        ledger_entry_add(
            user_id=account.user_id,
            kind=LedgerEntry.Kind.ALLOWANCE,
            amount=-account.allowance,
            reference=reference,
            memo="unspent allowance expired",
        )
    CreditAccount.objects.filter(pk=account.pk).update(allowance=0, allowance_expires_at=None)


def allowances_expire(*, now: datetime | None = None) -> int:
    """Expires every allowance whose period has ended (Celery beat); returns how many."""
    now = now or timezone.now()
    expired = 0
    # A running trial's credit is its own to end (billing.trials: what a day left unspent
    # goes back to the trial).
    due = (
        CreditAccount.objects.filter(allowance_expires_at__lte=now)
        .exclude(user__trial__isnull=False, user__trial__ended_at__isnull=True)
        .values_list("pk", flat=True)
    )
    for pk in due:
        with transaction.atomic():
            account = CreditAccount.objects.select_for_update().get(pk=pk)
            if account.allowance_expires_at is None or account.allowance_expires_at > now:
                continue  # renewed meanwhile
            ends = f"{account.allowance_expires_at:%Y%m%dT%H%M%S}"
            allowance_end(account=account, reference=f"allowance-end:{account.user_id}:{ends}")
            expired += 1
    return expired
