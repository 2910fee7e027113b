"""A charge's later life (Stripe's API reference, "Refunds" and "Disputes"): refunded, in
full or in part, its credit is taken back in proportion; disputed, the account is suspended
(its keys refused) until the dispute closes; a lost dispute takes the credit back too.

These events may overtake the Checkout event that records the payment's intent: they then
wait for it (EventDeferred on the payment intent's id)."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from accounts.models import User
from payments.events import EventDeferred, EventIgnored, event_concerns, handles
from payments.models import Dispute, Payment
from payments.purchases import clawback_settle, disputes_open, payment_locked

DISPUTE_SUSPENSION = "a payment is disputed"


def _id(value: Any) -> str:
    """An id, whether Stripe sent it as a string or expanded the object."""
    return str(value.get("id", "")) if isinstance(value, dict) else str(value or "")


def _payment_of(obj: dict[str, Any], charge_id: str) -> Payment:
    intent = _id(obj.get("payment_intent"))
    payment = payment_locked(payment_intent_id=intent, charge_id=charge_id)
    if payment is None:
        if not intent:
            raise EventIgnored("a charge without a payment intent")
        raise EventDeferred(intent)
    event_concerns(payment.user_id)
    if charge_id and payment.charge_id != charge_id:
        payment.charge_id = charge_id
        payment.save(update_fields=["charge_id"])
    return payment


@handles("charge.refunded")
def charge_refunded(charge: dict[str, Any]) -> None:
    payment = _payment_of(charge, _id(charge.get("id")))
    refunded = int(charge.get("amount_refunded") or 0)
    if refunded <= payment.refunded_cents:
        return  # an older state of the charge, or one seen before
    payment.refunded_cents = refunded
    full = refunded >= payment.amount_cents
    payment.status = Payment.Status.REFUNDED if full else Payment.Status.PARTIALLY_REFUNDED
    payment.save(update_fields=["refunded_cents", "status"])
    clawback_settle(payment)


@handles("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed")
def charge_dispute(data: dict[str, Any]) -> None:
    payment = _payment_of(data, _id(data.get("charge")))
    closed = data.get("status") in ("won", "lost", "warning_closed")
    dispute, _ = Dispute.objects.select_for_update().get_or_create(
        id=data["id"],
        defaults={
            "payment": payment,
            "amount_cents": int(data.get("amount") or 0),
            "status": data.get("status", ""),
            "reason": data.get("reason") or "",
        },
    )
    if not dispute.is_open:
        return  # closed before: a later event cannot reopen it
    dispute.status = data.get("status", dispute.status)
    if closed:
        dispute.closed_at = timezone.now()
    dispute.save()
    user = User.objects.select_for_update().get(pk=payment.user_id)
    if dispute.is_open:
        if user.suspended_at is None:
            user.suspended_at, user.suspension_reason = timezone.now(), DISPUTE_SUSPENSION
            user.save(update_fields=["suspended_at", "suspension_reason"])
        return
    if dispute.status == "lost":
        clawback_settle(payment)
    if user.suspension_reason == DISPUTE_SUSPENSION and not disputes_open(user.pk):
        user.suspended_at, user.suspension_reason = None, ""
        user.save(update_fields=["suspended_at", "suspension_reason"])
