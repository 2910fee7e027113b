"""Auto top-up: when a customer's available credit falls under their threshold, their saved
card is charged off-session (a PaymentIntent) for their amount, at most one charge in flight
per customer (the settings row is locked while one is started, and the charge stays
recorded until it ends). The credit is granted when Stripe says the charge succeeded —
at once from its answer, or from `payment_intent.succeeded` — once either way
(purchase_complete). Declined GATEWAYZ_AUTO_TOPUP_MAX_FAILURES times in a row, it turns
itself off and tells the customer; after a decline it waits GATEWAYZ_AUTO_TOPUP_RETRY_SECONDS
before charging again."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.emails import email_later
from accounts.models import User
from billing.selectors import credit_account_of, credit_available
from payments.checkout import fee_cents_for
from payments.customers import stripe_customer_id
from payments.events import EventIgnored, event_concerns, handles
from payments.models import BillingSettings, Payment, dollars
from payments.purchases import payment_locked, purchase_complete
from payments.stripe_api import stripe_client

log = logging.getLogger(__name__)


def _due(now: datetime) -> Any:
    retry = now - timedelta(seconds=settings.GATEWAYZ_AUTO_TOPUP_RETRY_SECONDS)
    return BillingSettings.objects.filter(
        Q(auto_topup_failed_at__isnull=True) | Q(auto_topup_failed_at__lte=retry),
        auto_topup_enabled=True,
        auto_topup_payment__isnull=True,
    ).exclude(payment_method_id="")


def auto_topup_run(*, now: datetime | None = None) -> int:
    """Charges every customer whose credit is under their threshold; returns how many."""
    now = now or timezone.now()
    charged = 0
    for row in _due(now).select_related("user"):
        available = credit_available(user=row.user, account=credit_account_of(user=row.user))
        if available < row.auto_topup_threshold:
            charged += auto_topup_charge(user_id=row.user_id, now=now) is not None
    return charged


def auto_topup_charge(*, user_id: int, now: datetime) -> Payment | None:
    """Starts one top-up for the user unless one is in flight (or it is off)."""
    with transaction.atomic():
        row = _due(now).select_for_update().filter(user_id=user_id).first()
        if row is None:
            return None  # another run started one, or it is off
        cents = int(row.auto_topup_amount * 100)
        fee = fee_cents_for(cents)
        payment = Payment.objects.create(
            user_id=user_id,
            kind=Payment.Kind.AUTO_TOPUP,
            status=Payment.Status.PROCESSING,
            credits=row.auto_topup_amount,
            amount_cents=cents + fee,
            fee_cents=fee,
        )
        row.auto_topup_payment = payment
        row.save(update_fields=["auto_topup_payment"])
        method = row.payment_method_id
    user = User.objects.get(pk=user_id)
    try:
        intent = stripe_client().v1.payment_intents.create(
            params={
                "amount": payment.amount_cents,
                "currency": "usd",
                "customer": stripe_customer_id(user),
                "payment_method": method,
                "off_session": True,
                "confirm": True,
                "metadata": {"gatewayz_payment": str(payment.pk)},
            },
            options={"idempotency_key": f"gatewayz-topup-{payment.pk}"},
        )
    except stripe.CardError as declined:
        _declined(payment.pk, declined.user_message or str(declined), now)
        return payment
    except stripe.StripeError:
        log.exception("auto top-up of user %s: Stripe failed; tried again later", user_id)
        _declined(payment.pk, "", now, count=False)
        return payment
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        locked.payment_intent_id = intent.id
        locked.save(update_fields=["payment_intent_id"])
        if intent.status == "succeeded":
            _succeeded(locked)
    return payment


def _succeeded(payment: Payment) -> None:
    """Grants the top-up (once) and frees the customer's slot (call under the row lock)."""
    purchase_complete(payment)
    BillingSettings.objects.filter(user_id=payment.user_id, auto_topup_payment=payment).update(
        auto_topup_payment=None, auto_topup_failures=0, auto_topup_failed_at=None
    )


def _declined(payment_id: int, reason: str, now: datetime, count: bool = True) -> None:
    with transaction.atomic():
        payment = Payment.objects.select_for_update().get(pk=payment_id)
        if payment.paid_at is not None:
            return
        payment.status = Payment.Status.FAILED
        payment.save(update_fields=["status"])
        row = BillingSettings.objects.select_for_update().get(user_id=payment.user_id)
        row.auto_topup_payment = None
        row.auto_topup_failed_at = now
        if count:
            row.auto_topup_failures += 1
            email_later(
                user_id=payment.user_id,
                kind="payment_failed",
                amount=dollars(payment.amount_cents),
                what="an auto top-up",
                reason=reason,
            )
        if row.auto_topup_failures >= settings.GATEWAYZ_AUTO_TOPUP_MAX_FAILURES:
            row.auto_topup_enabled = False
            email_later(
                user_id=payment.user_id,
                kind="auto_topup_off",
                failures=str(row.auto_topup_failures),
            )
        row.save()


def _auto_topup_of(intent: dict[str, Any]) -> Payment:
    payment = payment_locked(payment_intent_id=str(intent.get("id", "")))
    if payment is None:
        ours = str((intent.get("metadata") or {}).get("gatewayz_payment", ""))
        payment = (
            Payment.objects.select_for_update()
            .filter(pk=int(ours) if ours.isdigit() else 0, kind=Payment.Kind.AUTO_TOPUP)
            .first()
        )
    if payment is None or payment.kind != Payment.Kind.AUTO_TOPUP:
        raise EventIgnored("not an auto top-up (Checkout's payments come with its events)")
    event_concerns(payment.user_id)
    return payment


@handles("payment_intent.succeeded")
def payment_intent_succeeded(intent: dict[str, Any]) -> None:
    payment = _auto_topup_of(intent)
    if not payment.payment_intent_id:
        payment.payment_intent_id = str(intent["id"])
        payment.save(update_fields=["payment_intent_id"])
    _succeeded(payment)


@handles("payment_intent.payment_failed")
def payment_intent_failed(intent: dict[str, Any]) -> None:
    payment = _auto_topup_of(intent)
    error = intent.get("last_payment_error") or {}
    reason = str(error.get("message", ""))
    transaction.on_commit(lambda: _declined(payment.pk, reason, timezone.now()))


def card_save(*, payment: Payment, payment_intent_id: str) -> None:
    """Keeps the card a purchase was paid with for auto top-up (the purchase asked to)."""
    intent = stripe_client().v1.payment_intents.retrieve(payment_intent_id)
    method_id = (
        intent.payment_method
        if isinstance(intent.payment_method, str)
        else (getattr(intent.payment_method, "id", ""))
    )
    if not method_id:
        return
    method = stripe_client().v1.payment_methods.retrieve(method_id)
    card = getattr(method, "card", None)
    BillingSettings.objects.update_or_create(
        user_id=payment.user_id,
        defaults={
            "payment_method_id": method_id,
            "card_brand": str(getattr(card, "brand", "") or ""),
            "card_last4": str(getattr(card, "last4", "") or ""),
        },
    )
