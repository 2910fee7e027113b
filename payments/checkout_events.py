"""Checkout's events (Stripe's API reference, "Checkout Session" and "Fulfill orders"): a
session completed and paid grants the payment's credit; completed unpaid (a bank debit,
say) waits for `async_payment_succeeded` or `_failed`; expired closes it. The amount and
currency are checked against the payment recorded when the session was opened."""

from __future__ import annotations

from typing import Any

from django.db import transaction

from payments.auto_topup import card_save
from payments.coupons import coupon_give_back
from payments.events import EventIgnored, event_concerns, handles
from payments.models import Payment
from payments.purchases import payment_locked, purchase_complete
from payments.subscription_events import (
    subscription_checkout_completed,
    subscription_checkout_expired,
)


class PaymentMismatch(Exception):
    """The session's amount is not the payment's: never granted, left for staff."""


def _payment_of(session: dict[str, Any]) -> Payment:
    if session.get("mode") != "payment":
        raise EventIgnored(f"a Checkout Session in {session.get('mode')} mode")
    payment = payment_locked(checkout_session_id=session.get("id", ""))
    if payment is None:
        raise EventIgnored("a Checkout Session Gatewayz did not open")
    event_concerns(payment.user_id)
    if (
        session.get("amount_total") != payment.amount_cents
        or (session.get("currency") or "").lower() != payment.currency
    ):
        raise PaymentMismatch(
            f"the session charged {session.get('amount_total')} {session.get('currency')}; "
            f"the payment is {payment.amount_cents} {payment.currency}"
        )
    intent = session.get("payment_intent")
    if isinstance(intent, dict):
        intent = intent.get("id")
    if intent and payment.payment_intent_id != intent:
        payment.payment_intent_id = intent
        payment.save(update_fields=["payment_intent_id"])
    return payment


@handles("checkout.session.completed")
def checkout_completed(session: dict[str, Any]) -> None:
    if session.get("mode") == "subscription":
        subscription_checkout_completed(session)
        return
    payment = _payment_of(session)
    if session.get("payment_status") == "paid":
        purchase_complete(payment)
        _card_keep(payment)
    elif payment.status == Payment.Status.OPEN:
        payment.status = Payment.Status.PROCESSING
        payment.save(update_fields=["status"])


@handles("checkout.session.async_payment_succeeded")
def checkout_async_succeeded(session: dict[str, Any]) -> None:
    payment = _payment_of(session)
    purchase_complete(payment)
    _card_keep(payment)


def _card_keep(payment: Payment) -> None:
    """A purchase that asked to keep its card: the card is read from Stripe after commit."""
    if payment.save_card and payment.payment_intent_id:
        intent = payment.payment_intent_id
        transaction.on_commit(lambda: card_save(payment=payment, payment_intent_id=intent))


@handles("checkout.session.async_payment_failed")
def checkout_async_failed(session: dict[str, Any]) -> None:
    payment = _payment_of(session)
    if payment.paid_at is None:
        payment.status = Payment.Status.FAILED
        payment.save(update_fields=["status"])
        coupon_give_back(payment)


@handles("checkout.session.expired")
def checkout_expired(session: dict[str, Any]) -> None:
    if session.get("mode") == "subscription":
        subscription_checkout_expired(session)
        return
    payment = _payment_of(session)
    if payment.status == Payment.Status.OPEN:
        payment.status = Payment.Status.EXPIRED
        payment.save(update_fields=["status"])
        coupon_give_back(payment)
