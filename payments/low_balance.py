"""Low-balance notices: a customer who set a threshold is mailed once when their available
credit falls under it, and again only after it has been back above it."""

from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from accounts.emails import email_later
from billing.selectors import credit_account_of, credit_available
from core.amounts import amount_text
from payments.models import BillingSettings


def low_balance_notify() -> int:
    """Mails each customer whose available credit fell under their threshold since the last
    run; returns how many. A conditional UPDATE decides who is told (once, however many runs
    race); a row whose state did not change is only read."""
    sent = 0
    watched = BillingSettings.objects.filter(low_balance_threshold__isnull=False)
    for row in watched.select_related("user"):
        threshold = row.low_balance_threshold
        if threshold is None:
            continue
        available = credit_available(user=row.user, account=credit_account_of(user=row.user))
        mine = BillingSettings.objects.filter(pk=row.pk)
        if available >= threshold:
            if row.low_balance_notified_at is not None:  # recovered: the next fall is told
                mine.update(low_balance_notified_at=None)
            continue
        if row.low_balance_notified_at is not None:
            continue  # told already
        with transaction.atomic():
            if mine.filter(low_balance_notified_at__isnull=True).update(
                low_balance_notified_at=timezone.now()
            ):
                email_later(
                    user_id=row.user_id,
                    kind="low_balance",
                    available=f"{available:.2f}",
                    threshold=amount_text(threshold),
                )
                sent += 1
    return sent
