"""What a payment does to the customer's credit: its purchase granted once when paid, and
taken back (clawed back) in proportion to what was refunded or lost in a dispute. Each is a
ledger entry idempotent on the payment and its state, so an event seen twice, or events in
any order, leave the balance as the payment's final state says. Call under the payment
row's lock (`payment_locked`)."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal

from django.db import transaction
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Greatest
from django.utils import timezone

from accounts.emails import email_later
from billing.models import CreditAccount, LedgerEntry
from billing.services import ledger_entry_add
from billing.trials import trial_converted
from payments.events import events_resume
from payments.models import Dispute, Payment, dollars
from payments.referrals import referral_reward

PLACES = Decimal("0.000000000001")


def payment_locked(**lookup: str) -> Payment | None:
    """The payment matching one of the given Stripe ids, locked for the transaction."""
    match = Q()
    for field, value in lookup.items():
        if value:
            match |= Q(**{field: value})
    if not match:
        return None
    return Payment.objects.select_for_update().filter(match).first()


def purchase_complete(payment: Payment) -> None:
    """The payment is paid: its credit is granted (once)."""
    if payment.paid_at is not None:
        return
    ledger_entry_add(
        user_id=payment.user_id,
        kind=LedgerEntry.Kind.PURCHASE,
        amount=payment.credits,
        reference=payment.ledger_reference,
        memo=f"{payment.credits.normalize():f} credits for {dollars(payment.amount_cents)}",
    )
    payment.status = Payment.Status.PAID
    payment.paid_at = timezone.now()
    payment.save(update_fields=["status", "paid_at"])
    referral_reward(payment)
    trial_converted(user_id=payment.user_id)
    email_later(
        user_id=payment.user_id,
        kind="receipt",
        paid=dollars(payment.amount_cents),
        credits=f"{payment.credits.normalize():f}",
        what="Gatewayz credits" if payment.kind != Payment.Kind.AUTO_TOPUP else "an auto top-up",
        reference=f"payment {payment.pk}",
    )
    if payment.payment_intent_id:
        intent = payment.payment_intent_id
        transaction.on_commit(lambda: events_resume(intent))


def clawback_settle(payment: Payment) -> None:
    """Takes back the share of the payment's credit that its refunds and lost disputes
    returned to the customer, less what was taken back before. Credit never granted (a
    payment refunded before it was paid) is not taken. The balance may go below zero: the
    customer's requests are then refused (402) until they top up."""
    lost = payment.disputes.filter(status="lost").aggregate(cents=Sum("amount_cents"))["cents"]
    taken_cents = min(payment.amount_cents, payment.refunded_cents + (lost or 0))
    if payment.paid_at is None or not taken_cents:
        return
    if taken_cents == payment.amount_cents:
        target = payment.credits
    else:
        share = payment.credits * taken_cents / payment.amount_cents
        target = share.quantize(PLACES, rounding=ROUND_DOWN)
    owed = target - payment.clawed_back
    if owed <= 0:
        return
    if payment.kind == Payment.Kind.SUBSCRIPTION:  # it took back allowance: less is left
        CreditAccount.objects.filter(user_id=payment.user_id).update(
            allowance=Greatest(F("allowance") - owed, Value(Decimal(0)))
        )
    ledger_entry_add(
        user_id=payment.user_id,
        kind=LedgerEntry.Kind.CLAWBACK,
        amount=-owed,
        reference=f"payment:{payment.pk}:{taken_cents}",
        memo=f"{dollars(taken_cents)} of {dollars(payment.amount_cents)} returned to the payer",
    )
    payment.clawed_back = target
    payment.save(update_fields=["clawed_back"])


def disputes_open(user_id: int) -> bool:
    return Dispute.objects.filter(payment__user_id=user_id, closed_at__isnull=True).exists()
