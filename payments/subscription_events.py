"""Subscriptions' events (Stripe's API reference, "Using webhooks with subscriptions"):

- `checkout.session.completed` in subscription mode links our Subscription to Stripe's and
  puts the user on its plan;
- `invoice.paid` grants the plan's allowance for the invoice's period (the unspent rest of
  the period before expires first; an upgrade's prorated invoice adds the difference) and
  records the invoice as a Payment, so its refunds and disputes take the allowance back;
- `customer.subscription.created` / `.updated` keep status, plan (the price's, from the
  Billing Portal), period and cancellation; `.deleted` ends it: the user is back on Free,
  the allowance they paid for lasts to its period's end;
- `invoice.payment_failed`: the subscription is past due (Stripe retries the card).

Stripe does not promise their order: an invoice or subscription event that arrives before
the Checkout event that links the subscription waits for it (EventDeferred on its id)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.emails import email_later
from accounts.models import Plan, User
from billing.allowance import allowance_grant, allowance_top_up
from billing.trials import trial_converted
from payments.events import EventDeferred, EventIgnored, event_concerns, events_resume, handles
from payments.mirror import mirror_later
from payments.models import Payment, Subscription, dollars


def _id(value: Any) -> str:
    return str(value.get("id", "")) if isinstance(value, dict) else str(value or "")


def _when(seconds: Any) -> datetime | None:
    return datetime.fromtimestamp(int(seconds), tz=UTC) if seconds else None


def _user_plan(subscription: Subscription) -> None:
    """The user is on the subscription's plan while it is live, else on Free (no plan)."""
    plan = subscription.plan if subscription.live else None
    user = User.objects.select_for_update().get(pk=subscription.user_id)
    if user.plan_id != (plan.pk if plan else None):
        user.plan = plan
        user.save(update_fields=["plan"])


def _linked(subscription_id: str, metadata: dict[str, Any]) -> Subscription:
    """Our Subscription for Stripe's id, locked; found by our id in its metadata the first
    time (then linked); EventDeferred until one of them is known."""
    found = (
        Subscription.objects.select_for_update()
        .filter(stripe_subscription_id=subscription_id)
        .first()
    )
    if found is not None:
        return found
    ours = str(metadata.get("gatewayz_subscription", ""))
    if ours.isdigit():
        found = (
            Subscription.objects.select_for_update()
            .filter(pk=int(ours), stripe_subscription_id__isnull=True)
            .first()
        )
        if found is not None:
            found.stripe_subscription_id = subscription_id
            found.save(update_fields=["stripe_subscription_id"])
            event_concerns(found.user_id)
            transaction.on_commit(lambda: events_resume(subscription_id))
            return found
    raise EventDeferred(subscription_id)


def subscription_checkout_completed(session: dict[str, Any]) -> None:
    subscription = (
        Subscription.objects.select_for_update()
        .filter(checkout_session_id=session.get("id", ""))
        .first()
    )
    if subscription is None:
        raise EventIgnored("a Checkout Session Gatewayz did not open")
    event_concerns(subscription.user_id)
    stripe_id = _id(session.get("subscription"))
    if not stripe_id:
        raise EventIgnored("a subscription Checkout Session with no subscription")
    if subscription.stripe_subscription_id is None:
        subscription.stripe_subscription_id = stripe_id
        transaction.on_commit(lambda: events_resume(stripe_id))
    if session.get("payment_status") in ("paid", "no_payment_required") and (
        subscription.status == Subscription.Status.INCOMPLETE
    ):
        subscription.status = Subscription.Status.ACTIVE
    subscription.save()
    _user_plan(subscription)


def _plan_of(obj: dict[str, Any], metadata: dict[str, Any], fallback: Plan) -> Plan:
    """The plan an invoice or subscription is for: its price's (the Billing Portal changes
    the price), else the plan named in its metadata, else what we had."""
    prices = []
    for item in (obj.get("items") or obj.get("lines") or {}).get("data", []):
        prices += [_id(item.get("price")), _id(item.get("plan"))]
    prices = [p for p in prices if p]
    if prices:
        plan = Plan.objects.filter(stripe_price_id__in=prices).first()
        if plan is not None:
            return plan
    slug = metadata.get("gatewayz_plan")
    return Plan.objects.filter(slug=slug).first() or fallback if slug else fallback


@handles("customer.subscription.created", "customer.subscription.updated")
def subscription_updated(data: dict[str, Any]) -> None:
    metadata = data.get("metadata") or {}
    subscription = _linked(data["id"], metadata)
    subscription.plan = _plan_of(data, metadata, subscription.plan)
    status = data.get("status", subscription.status)
    if status in Subscription.Status.values:
        subscription.status = status
    items = (data.get("items") or {}).get("data") or [{}]
    period_end = data.get("current_period_end") or items[0].get("current_period_end")
    subscription.current_period_end = _when(period_end) or subscription.current_period_end
    subscription.cancel_at_period_end = bool(data.get("cancel_at_period_end"))
    subscription.save()
    _user_plan(subscription)
    mirror_later("subscription", data)


@handles("customer.subscription.deleted")
def subscription_deleted(data: dict[str, Any]) -> None:
    subscription = _linked(data["id"], data.get("metadata") or {})
    subscription.status = Subscription.Status.CANCELED
    subscription.save(update_fields=["status", "updated_at"])
    _user_plan(subscription)
    mirror_later("subscription", data)


def _subscription_of_invoice(invoice: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The subscription's id and metadata, where the API version in use puts them."""
    details = invoice.get("subscription_details") or {}
    parent = (invoice.get("parent") or {}).get("subscription_details") or {}
    subscription_id = _id(invoice.get("subscription")) or _id(parent.get("subscription"))
    return subscription_id, details.get("metadata") or parent.get("metadata") or {}


@handles("invoice.paid", "invoice.payment_succeeded")
def invoice_paid(invoice: dict[str, Any]) -> None:
    subscription_id, metadata = _subscription_of_invoice(invoice)
    if not subscription_id:
        raise EventIgnored("an invoice of no subscription")
    subscription = _linked(subscription_id, metadata)
    if Payment.objects.filter(invoice_id=invoice["id"]).exists():
        return  # this invoice was granted before (invoice.paid and .payment_succeeded)
    plan = _plan_of(invoice, metadata, subscription.plan)
    lines = (invoice.get("lines") or {}).get("data") or []
    ends = [line.get("period", {}).get("end") for line in lines if line.get("period")]
    period_end = _when(max(ends) if ends else invoice.get("period_end"))
    paid = int(invoice.get("amount_paid") or 0)
    upgrade = invoice.get("billing_reason") == "subscription_update"
    granted = (
        max(plan.allowance - subscription.period_allowance, Decimal(0))
        if upgrade
        else (plan.allowance)
    )
    intent = _id(invoice.get("payment_intent")) or None
    Payment.objects.create(
        user_id=subscription.user_id,
        kind=Payment.Kind.SUBSCRIPTION,
        status=Payment.Status.PAID,
        credits=granted,
        amount_cents=paid,
        currency=(invoice.get("currency") or "usd").lower(),
        invoice_id=invoice["id"],
        payment_intent_id=intent,
        charge_id=_id(invoice.get("charge")),
        paid_at=timezone.now(),
    )
    memo = f"{plan.name} allowance"
    if upgrade:
        allowance_top_up(
            user_id=subscription.user_id,
            amount=granted,
            reference=f"invoice:{invoice['id']}",
            memo=f"{memo} (upgrade)",
        )
        subscription.period_allowance += granted
    elif period_end is not None and granted > 0:
        allowance_grant(
            user_id=subscription.user_id,
            amount=granted,
            expires_at=period_end,
            reference=f"invoice:{invoice['id']}",
            memo=memo,
        )
        subscription.period_allowance = granted
    subscription.plan = plan
    subscription.current_period_end = period_end or subscription.current_period_end
    if subscription.status in (Subscription.Status.INCOMPLETE, Subscription.Status.PAST_DUE):
        subscription.status = Subscription.Status.ACTIVE
    subscription.save()
    _user_plan(subscription)
    trial_converted(user_id=subscription.user_id)
    email_later(
        user_id=subscription.user_id,
        kind="receipt",
        paid=dollars(paid),
        credits=f"{granted.normalize():f}",
        what=f"the {plan.name} plan" + (" (upgrade)" if upgrade else ""),
        reference=f"invoice {invoice['id']}",
    )
    mirror_later("invoice", invoice)
    if intent:  # a refund or dispute of this invoice's charge may be waiting
        transaction.on_commit(lambda: events_resume(intent))


@handles("invoice.payment_failed")
def invoice_payment_failed(invoice: dict[str, Any]) -> None:
    subscription_id, metadata = _subscription_of_invoice(invoice)
    if not subscription_id:
        raise EventIgnored("an invoice of no subscription")
    subscription = _linked(subscription_id, metadata)
    if subscription.status == Subscription.Status.ACTIVE:
        subscription.status = Subscription.Status.PAST_DUE
        subscription.save(update_fields=["status", "updated_at"])
    email_later(
        user_id=subscription.user_id,
        kind="payment_failed",
        amount=dollars(int(invoice.get("amount_due") or 0)),
        what=f"the {subscription.plan.name} plan",
        reason="",
        retrying="1" if invoice.get("next_payment_attempt") else "",
    )


def subscription_checkout_expired(session: dict[str, Any]) -> None:
    subscription = (
        Subscription.objects.select_for_update()
        .filter(checkout_session_id=session.get("id", ""), status=Subscription.Status.INCOMPLETE)
        .first()
    )
    if subscription is None:
        raise EventIgnored("no open subscription checkout of Gatewayz")
    subscription.status = Subscription.Status.EXPIRED
    subscription.save(update_fields=["status", "updated_at"])
