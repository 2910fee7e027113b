"""Subscribing to a plan: a Checkout Session in subscription mode, and Stripe's Billing
Portal (card, invoices, cancel, upgrade or downgrade with Stripe's proration). What follows
is Stripe's events' (payments.subscription_events)."""

from __future__ import annotations

from django.db import transaction

from accounts.models import Plan, User
from payments.customers import stripe_customer_id
from payments.models import LIVE_STATUSES, Subscription
from payments.stripe_api import stripe_client


class SubscriptionRefused(ValueError):
    def __init__(self, message: str, code: str, status: int = 400) -> None:
        super().__init__(message)
        self.code, self.status = code, status


def plan_for_sale(slug: object) -> Plan:
    plan = Plan.objects.filter(slug=str(slug), public=True).first() if slug else None
    if plan is None:
        raise SubscriptionRefused(f"There is no plan {slug!r}.", "invalid_request")
    if plan.price_cents <= 0:
        raise SubscriptionRefused(
            f"{plan.name} is free: there is nothing to subscribe to.", "invalid_request"
        )
    return plan


def subscription_live(user: User) -> Subscription | None:
    return Subscription.objects.filter(user=user, status__in=LIVE_STATUSES).first()


def subscription_checkout_start(
    *, user: User, plan: Plan, success_url: str, cancel_url: str
) -> tuple[Subscription, str]:
    """Opens a Checkout Session for the plan; answers its page. A customer with a live
    subscription changes plans in the Billing Portal instead (Stripe prorates there)."""
    if subscription_live(user) is not None:
        raise SubscriptionRefused(
            "You already have a subscription: change plans in the billing portal.",
            "ALREADY_SUBSCRIBED",
            409,
        )
    customer = stripe_customer_id(user)
    with transaction.atomic():
        subscription = Subscription.objects.create(user=user, plan=plan)
    if plan.stripe_price_id:
        item: dict[str, object] = {"price": plan.stripe_price_id, "quantity": 1}
    else:
        item = {
            "quantity": 1,
            "price_data": {
                "currency": "usd",
                "unit_amount": plan.price_cents,
                "recurring": {"interval": "month"},
                "product_data": {"name": f"Gatewayz {plan.name}"},
            },
        }
    metadata = {
        "gatewayz_subscription": str(subscription.pk),
        "gatewayz_user": str(user.pk),
        "gatewayz_plan": plan.slug,
    }
    try:
        session = stripe_client().v1.checkout.sessions.create(
            params={  # type: ignore[arg-type]  # Stripe's TypedDict, built from plain dicts
                "mode": "subscription",
                "customer": customer,
                "client_reference_id": str(user.pk),
                "line_items": [item],
                "metadata": metadata,
                "subscription_data": {"metadata": metadata},
                "success_url": success_url,
                "cancel_url": cancel_url,
            },
            options={"idempotency_key": f"gatewayz-subscribe-{subscription.pk}"},
        )
    except Exception:
        subscription.delete()
        raise
    subscription.checkout_session_id = session.id
    subscription.save(update_fields=["checkout_session_id"])
    return subscription, str(session.url)


def portal_session_url(*, user: User, return_url: str) -> str:
    session = stripe_client().v1.billing_portal.sessions.create(
        params={"customer": stripe_customer_id(user), "return_url": return_url}
    )
    return str(session.url)
