"""Mail to a customer about their account: receipts, low balance, a payment failed, auto
top-up turned off, a trial ending. Queued when the transaction that caused it commits (a
rolled-back purchase mails nothing), sent by Celery (retried if the mail service fails),
rendered from templates/email/<kind>.txt. Here, below billing and payments, so both send."""

from __future__ import annotations

from functools import partial
from typing import Any

from celery import shared_task
from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.template.loader import render_to_string

from accounts.models import User

SUBJECTS = {
    "receipt": "Your Gatewayz receipt",
    "low_balance": "Your Gatewayz balance is low",
    "payment_failed": "Your Gatewayz payment failed",
    "auto_topup_off": "Gatewayz auto top-up is off",
    "trial_ending": "Your Gatewayz trial ends soon",
}


def email_later(*, user_id: int, kind: str, **context: str) -> None:
    """Mails `user_id` once the current transaction commits; `context`: plain strings
    (they travel through the task queue)."""
    if kind not in SUBJECTS:
        raise ValueError(f"no mail called {kind!r}")
    transaction.on_commit(partial(account_email_send.delay, user_id, kind, context))


@shared_task(autoretry_for=(OSError,), retry_backoff=30, max_retries=8)
def account_email_send(user_id: int, kind: str, context: dict[str, Any]) -> None:
    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return
    body = render_to_string(f"email/{kind}.txt", {**context, "user": user})
    send_mail(SUBJECTS[kind], body, settings.DEFAULT_FROM_EMAIL, [user.email])
