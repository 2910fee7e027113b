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
    sent = 0
    watched = BillingSettings.objects.filter(low_balance_threshold__isnull=False)
    for row in watched.select_related("user"):
        threshold = row.low_balance_threshold
        if threshold is None:
            continue
        available = credit_available(user=row.user, account=credit_account_of(user=row.user))
        low = available < threshold
        with transaction.atomic():
            locked = BillingSettings.objects.select_for_update().get(pk=row.pk)
            if low and locked.low_balance_notified_at is None:
                locked.low_balance_notified_at = timezone.now()
                locked.save(update_fields=["low_balance_notified_at"])
                email_later(
                    user_id=row.user_id,
                    kind="low_balance",
                    available=f"{available:.2f}",
                    threshold=amount_text(threshold),
                )
                sent += 1
            elif not low and locked.low_balance_notified_at is not None:
                locked.low_balance_notified_at = None  # recovered: the next fall is told
                locked.save(update_fields=["low_balance_notified_at"])
    return sent
