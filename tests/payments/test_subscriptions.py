"""Plans and subscriptions (payments.subscriptions, payments.subscription_events,
billing.allowance): subscribe with Checkout against the Stripe double; each paid invoice
grants the plan's allowance for its period, spent before purchased credit and gone at the
period's end; the portal's upgrade adds the difference; a cancellation puts the user back
on Free; a refund of an invoice takes allowance back."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson
import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Plan, User
from billing.allowance import allowance_grant, allowances_expire
from billing.models import CreditAccount, LedgerEntry
from payments.models import Payment, StripeEvent, Subscription
from tests.payments.conftest import balance, control, deliver
from tests.support.usage import usage_charge


@pytest.fixture
def plans(stripe_on: str) -> dict[str, Plan]:
    """Pro priced inline at Checkout; Max with a Stripe price (the portal switches to it)."""
    product = httpx.post(
        f"{stripe_on}/v1/products", data={"name": "Max", "type": "service"}, auth=("sk_test_x", "")
    ).json()
    price = httpx.post(
        f"{stripe_on}/v1/plans",
        data={"product": product["id"], "amount": "7500", "currency": "usd", "interval": "month"},
        auth=("sk_test_x", ""),
    ).json()
    tag = uuid.uuid4().hex[:6]
    return {
        "pro": Plan.objects.create(
            slug=f"pro-{tag}",
            name="Pro",
            price_cents=800,
            allowance=Decimal("15"),
            limit_rpm=600,
            position=1,
        ),
        "max": Plan.objects.create(
            slug=f"max-{tag}",
            name="Max",
            price_cents=7500,
            allowance=Decimal("150"),
            priority="high",
            position=2,
            stripe_price_id=price["id"],
        ),
    }


def _subscribe(
    client: Client, double: str, plan: Plan, deliver_all: bool = True, capture: Any = None
) -> dict[str, Any]:
    opened = client.post(
        "/api/stripe/subscription-checkout", {"plan": plan.slug}, content_type="application/json"
    )
    assert opened.status_code == 201, opened.content
    session = opened.json()["url"].rsplit("/", 1)[1]
    paid = control(double, f"checkout/sessions/{session}/pay")
    if deliver_all:
        for event in paid["events"]:
            if capture is not None:  # run what waits for commit (dj-stripe's mirror)
                with capture(execute=True):
                    assert deliver(Client(), event["delivery"]).status_code == 200
            else:
                assert deliver(Client(), event["delivery"]).status_code == 200
    return paid


def _subscription_id(paid: dict[str, Any]) -> str:
    return paid["events"][0]["event"]["data"]["object"]["id"]


@pytest.mark.django_db
def test_plans_are_public_with_price_allowance_and_limits(plans):
    body = Client().get("/plans").json()
    by_slug = {p["slug"]: p for p in body["data"]}
    pro = by_slug[plans["pro"].slug]
    assert (pro["price_cents"], pro["allowance"], pro["interval"]) == (800, "15", "month")
    assert pro["limits"]["rpm"] == 600 and pro["limits"]["rpd"] is None
    assert "free" in by_slug and by_slug["free"]["price_cents"] == 0


@pytest.mark.django_db
def test_subscribing_puts_the_user_on_the_plan_with_its_allowance(
    plans, stripe_on, customer, django_capture_on_commit_callbacks
):
    from djstripe.models import Invoice as MirroredInvoice
    from djstripe.models import Subscription as MirroredSubscription

    user, client = customer(credit="10")
    paid = _subscribe(client, stripe_on, plans["pro"], capture=django_capture_on_commit_callbacks)
    assert [e["event"]["type"] for e in paid["events"]] == [
        "customer.subscription.created",
        "invoice.paid",
        "checkout.session.completed",
    ]
    user.refresh_from_db()
    assert user.plan == plans["pro"]
    mine = client.get("/user/plan").json()
    assert mine["plan"]["slug"] == plans["pro"].slug
    assert mine["subscription"]["status"] == "active"
    assert (mine["allowance"], mine["purchased"]) == ("15", "10")
    shown = client.get("/user/balance").json()
    assert (shown["balance"], shown["allowance"], shown["purchased"]) == ("25", "15", "10")
    invoice = Payment.objects.get(user=user, kind="subscription")
    assert (invoice.amount_cents, invoice.credits) == (800, Decimal("15"))
    # dj-stripe mirrors Stripe's subscription and invoice, linked to the user's Customer.
    mirrored = MirroredSubscription.objects.get(id=_subscription_id(paid))
    assert (mirrored.status, mirrored.customer.subscriber) == ("active", user)
    assert MirroredInvoice.objects.filter(id=invoice.invoice_id).exists()
    again = client.post(
        "/api/stripe/subscription-checkout",
        {"plan": plans["max"].slug},
        content_type="application/json",
    )
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_SUBSCRIBED"


@pytest.mark.django_db
def test_an_invoice_before_anything_links_it_waits(
    plans, stripe_on, customer, django_capture_on_commit_callbacks
):
    user, client = customer()
    paid = _subscribe(client, stripe_on, plans["pro"], deliver_all=False)
    created, invoice, completed = (e["delivery"] for e in paid["events"])
    # An invoice whose metadata names nothing of ours arrives first: it waits.
    event = orjson.loads(invoice["payload"])
    event["data"]["object"]["subscription_details"] = {"metadata": {}}
    from tests.payments.conftest import signed

    assert deliver(Client(), signed(event)).json()["status"] == "deferred"
    assert balance(user) == 0
    with django_capture_on_commit_callbacks(execute=True):
        deliver(Client(), completed)  # links the subscription: the invoice runs again
    assert StripeEvent.objects.get(pk=event["id"]).status == "processed"
    assert balance(user) == Decimal("15")
    deliver(Client(), invoice)  # the same invoice again (its real delivery): nothing more
    deliver(Client(), created)
    assert balance(user) == Decimal("15")


def _usage(user: User, cost: str) -> None:
    usage_charge(user.pk, cost)


@pytest.mark.django_db
@pytest.mark.smoke
def test_usage_spends_the_allowance_first_then_purchased_credit(customer):
    user, _ = customer(credit="10")
    allowance_grant(
        user_id=user.pk,
        amount=Decimal("5"),
        reference="inv-a",
        expires_at=timezone.now() + timedelta(days=30),
        memo="Pro allowance",
    )
    _usage(user, "3")
    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.allowance, account.purchased) == (12, 2, 10)
    _usage(user, "4.5")  # 2 from the allowance, 2.5 from purchased credit
    account.refresh_from_db()
    assert (account.balance, account.allowance, account.purchased) == (
        Decimal("7.5"),
        0,
        Decimal("7.5"),
    )


@pytest.mark.django_db
@pytest.mark.smoke
def test_the_unspent_allowance_expires_at_the_period_end_once(customer):
    user, _ = customer(credit="1")
    allowance_grant(
        user_id=user.pk,
        amount=Decimal("15"),
        reference="inv-b",
        expires_at=timezone.now() + timedelta(seconds=1),
        memo="Pro allowance",
    )
    _usage(user, "4")
    later = timezone.now() + timedelta(seconds=2)
    assert allowances_expire(now=later) == 1
    assert allowances_expire(now=later) == 0
    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.allowance, account.allowance_expires_at) == (1, 0, None)
    expired = LedgerEntry.objects.get(user=user, kind="allowance", amount__lt=0)
    assert expired.amount == Decimal("-11") and expired.memo == "unspent allowance expired"


@pytest.mark.django_db
def test_a_renewal_replaces_the_rest_of_the_period_with_a_new_allowance(plans, stripe_on, customer):
    user, client = customer()
    paid = _subscribe(client, stripe_on, plans["pro"])
    _usage(user, "5")
    renewed = control(stripe_on, f"subscriptions/{_subscription_id(paid)}/renew")
    for event in renewed["events"]:
        deliver(Client(), event["delivery"])
    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.allowance) == (Decimal("15"), Decimal("15"))  # no roll-over
    assert account.allowance_expires_at > timezone.now() + timedelta(days=40)
    assert Payment.objects.filter(user=user, kind="subscription").count() == 2


@pytest.mark.django_db
def test_an_upgrade_in_the_portal_adds_the_difference_and_the_new_plan(plans, stripe_on, customer):
    user, client = customer()
    portal = client.post("/api/stripe/portal-session", {}, content_type="application/json")
    assert portal.status_code == 201 and "/portal/bps_test_" in portal.json()["url"]
    paid = _subscribe(client, stripe_on, plans["pro"])
    changed = control(
        stripe_on,
        f"subscriptions/{_subscription_id(paid)}/change",
        price=plans["max"].stripe_price_id,
    )
    assert [e["event"]["type"] for e in changed["events"]] == [
        "customer.subscription.updated",
        "invoice.paid",
    ]
    for event in changed["events"]:
        deliver(Client(), event["delivery"])
    user.refresh_from_db()
    assert user.plan == plans["max"]
    assert CreditAccount.objects.get(user=user).allowance == Decimal("150")  # 15 + 135
    assert Subscription.objects.get(user=user).period_allowance == Decimal("150")


@pytest.mark.django_db
def test_cancelling_puts_the_user_back_on_free_and_keeps_what_they_paid_for(
    plans, stripe_on, customer
):
    user, client = customer()
    paid = _subscribe(client, stripe_on, plans["pro"])
    at_end = control(stripe_on, f"subscriptions/{_subscription_id(paid)}/cancel", at_period_end="1")
    deliver(Client(), at_end["delivery"])
    assert client.get("/user/plan").json()["subscription"]["cancel_at_period_end"] is True
    ended = control(stripe_on, f"subscriptions/{_subscription_id(paid)}/cancel")
    deliver(Client(), ended["delivery"])
    user.refresh_from_db()
    assert user.plan is None
    mine = client.get("/user/plan").json()
    assert mine["plan"]["slug"] == "free" and mine["subscription"] is None
    assert mine["allowance"] == "15"  # paid for: lasts to its period's end


@pytest.mark.django_db
def test_a_refunded_invoice_takes_its_allowance_back(plans, stripe_on, customer):
    import stripe

    from tests.conftest import STRIPE_KEY

    user, client = customer(credit="2")
    _subscribe(client, stripe_on, plans["pro"])
    invoice = Payment.objects.get(user=user, kind="subscription")
    stripe.StripeClient(STRIPE_KEY, base_addresses={"api": stripe_on}).v1.refunds.create(
        params={"payment_intent": invoice.payment_intent_id, "amount": 800}
    )
    events = httpx.get(f"{stripe_on}/_double/events").json()["data"]
    refund = [
        e
        for e in events
        if e["event"]["type"] == "charge.refunded"
        and e["event"]["data"]["object"]["payment_intent"] == invoice.payment_intent_id
    ]
    deliver(Client(), refund[-1]["delivery"])
    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.allowance, account.purchased) == (2, 0, 2)


@pytest.mark.django_db
@pytest.mark.smoke
def test_without_stripe_subscribing_says_payments_are_not_configured(customer, settings):
    settings.STRIPE_SECRET_KEY = ""
    _, client = customer()
    for path, body in (
        ("/api/stripe/subscription-checkout", {"plan": "pro"}),
        ("/api/stripe/portal-session", {}),
    ):
        answer = client.post(path, body, content_type="application/json")
        assert answer.status_code == 503 and answer.json()["code"] == "payments_not_configured"
    assert Client().get("/plans").status_code == 200
