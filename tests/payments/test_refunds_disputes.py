"""A charge's later life (payments.charge_events): a refund, in part or in full, takes the
credit back in proportion, never more than was granted, whatever the order or repetition of
the events; a refund that overtakes the purchase's event waits for it; a dispute suspends
the account (its keys refused with a 403 by the gateway) until it closes, and a lost one
takes the credit back, which may leave the balance below zero: requests then get 402."""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from django.db.models import Sum
from django.test import Client

from accounts.models import User
from accounts.services import api_key_create
from billing.models import LedgerEntry
from payments.models import Payment, StripeEvent
from tests.payments.conftest import STRIPE_KEY, balance, checkout, control, deliver


def _bought(client: Client, double: str, amount: str) -> tuple[Payment, dict[str, Any]]:
    opened = checkout(client, amount=amount).json()
    paid = control(double, f"checkout/sessions/{opened['session_id']}/pay")
    return Payment.objects.get(pk=opened["payment_id"]), paid


def _refund(double: str, payment: Payment, cents: int) -> dict[str, str]:
    """Refunds at Stripe (the double's localstripe); answers the charge.refunded delivery.
    (The amount is always given: localstripe refunds the whole charge again without it.)"""
    params: dict[str, Any] = {"payment_intent": payment.payment_intent_id, "amount": cents}
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": double})
    refund = client.v1.refunds.create(params=params)
    events = httpx.get(f"{double}/_double/events").json()["data"]
    matching = [
        e
        for e in events
        if e["event"]["type"] == "charge.refunded"
        and e["event"]["data"]["object"]["id"] == refund.charge
        and e["event"]["data"]["object"]["amount_refunded"] >= refund.amount
    ]
    return matching[-1]["delivery"]


def _charge_id(double: str, payment: Payment) -> str:
    """The payment's charge at Stripe (localstripe expands it; Stripe names it)."""
    client = stripe.StripeClient(STRIPE_KEY, base_addresses={"api": double})
    charge = client.v1.payment_intents.retrieve(payment.payment_intent_id).latest_charge
    return charge if isinstance(charge, str) else charge["id"]


def _ledger_sum(user: User) -> Decimal:
    return LedgerEntry.objects.filter(user=user).aggregate(s=Sum("amount"))["s"]


@pytest.mark.django_db
def test_refunds_take_credit_back_in_proportion_and_never_more(stripe_on, customer):
    user, client = customer(credit="1")
    payment, paid = _bought(client, stripe_on, "30")
    deliver(Client(), paid["delivery"])
    payment.refresh_from_db()
    assert balance(user) == Decimal("31")

    quarter = _refund(stripe_on, payment, 750)  # 7.50 $ of 30 $
    assert deliver(Client(), quarter).json()["status"] == "processed"
    assert balance(user) == Decimal("23.5")
    deliver(Client(), quarter)  # again: nothing more
    assert balance(user) == Decimal("23.5")

    rest = _refund(stripe_on, payment, 2250)  # the remaining 22.50 $
    deliver(Client(), rest)
    deliver(Client(), quarter)  # an older state of the charge, late: nothing
    assert balance(user) == Decimal("1")
    payment.refresh_from_db()
    assert (payment.status, payment.refunded_cents, payment.clawed_back) == (
        Payment.Status.REFUNDED,
        3000,
        Decimal("30"),
    )
    assert _ledger_sum(user) == balance(user)
    clawbacks = LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.CLAWBACK)
    assert sorted(e.amount for e in clawbacks) == [Decimal("-22.5"), Decimal("-7.5")]


@pytest.mark.django_db
def test_a_third_refunded_takes_back_a_third_exactly_to_twelve_places(stripe_on, customer):
    user, client = customer()
    payment, paid = _bought(client, stripe_on, "10")
    deliver(Client(), paid["delivery"])
    payment.refresh_from_db()
    deliver(Client(), _refund(stripe_on, payment, 333))
    assert balance(user) == Decimal("6.67")  # 3.33 $ of 10 $: 3.33 credits
    deliver(Client(), _refund(stripe_on, payment, 667))
    assert balance(user) == 0


@pytest.mark.django_db
def test_a_refund_that_overtakes_the_purchase_event_waits_for_it(
    stripe_on, customer, django_capture_on_commit_callbacks
):
    user, client = customer()
    payment, paid = _bought(client, stripe_on, "20")
    payment.payment_intent_id = paid["event"]["data"]["object"]["payment_intent"]
    early = _refund(stripe_on, payment, 500)
    answer = deliver(Client(), early)
    assert answer.status_code == 200 and answer.json()["status"] == "deferred"
    assert balance(user) == 0
    with django_capture_on_commit_callbacks(execute=True):
        deliver(Client(), paid["delivery"])
    assert balance(user) == Decimal("15")  # 20 granted, 5 taken back
    refund_event = StripeEvent.objects.get(type="charge.refunded")
    assert refund_event.status == StripeEvent.Status.PROCESSED and refund_event.attempts == 2


BODY = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}


def _status(gateway: str, key: str) -> tuple[int, dict[str, Any]]:
    answer = httpx.post(
        f"{gateway}/v1/chat/completions", json=BODY, headers={"authorization": f"Bearer {key}"}
    )
    return answer.status_code, answer.json()


def _until(gateway: str, key: str, status: int, seconds: float = 5.0) -> tuple[int, dict]:
    deadline = time.monotonic() + seconds
    while True:
        seen = _status(gateway, key)
        if seen[0] == status or time.monotonic() > deadline:
            return seen
        time.sleep(0.05)


def test_a_dispute_suspends_the_keys_until_won(stripe_on, customer, gateway, live_db):
    user, client = customer()
    _, key = api_key_create(user=user, name="disputed")
    payment, paid = _bought(client, stripe_on, "20")
    deliver(Client(), paid["delivery"])
    assert _status(gateway, key)[0] == 200
    payment.refresh_from_db()
    charge_id = _charge_id(stripe_on, payment)

    opened = control(stripe_on, f"charges/{charge_id}/dispute")
    deliver(Client(), opened["delivery"])
    status, body = _until(gateway, key, 403)
    assert status == 403 and body["error"]["code"] == "account_suspended"
    assert "disputed" in body["error"]["message"]
    assert client.get("/user/balance").status_code == 200  # the account itself still works

    won = control(
        stripe_on, f"disputes/{opened['event']['data']['object']['id']}/close", outcome="won"
    )
    deliver(Client(), won["delivery"])
    assert _until(gateway, key, 200)[0] == 200
    assert balance(user) == Decimal("20") - _spent(user)


def _spent(user: User) -> Decimal:
    usage = LedgerEntry.objects.filter(user=user, kind=LedgerEntry.Kind.USAGE)
    return -(usage.aggregate(s=Sum("amount"))["s"] or Decimal(0))


def test_a_lost_dispute_takes_the_credit_back_and_a_negative_balance_gets_402(
    stripe_on, customer, gateway, live_db
):
    user, client = customer()
    _, key = api_key_create(user=user, name="chargeback")
    payment, paid = _bought(client, stripe_on, "10")
    deliver(Client(), paid["delivery"])
    payment.refresh_from_db()
    assert _status(gateway, key)[0] == 200  # some credit spent
    charge_id = _charge_id(stripe_on, payment)
    opened = control(stripe_on, f"charges/{charge_id}/dispute")
    deliver(Client(), opened["delivery"])
    lost = control(
        stripe_on, f"disputes/{opened['event']['data']['object']['id']}/close", outcome="lost"
    )
    deliver(Client(), lost["delivery"])

    deadline = time.monotonic() + 10
    while _spent(user) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # the request's charge reaches the ledger
    assert _spent(user) > 0
    assert balance(user) == -_spent(user) < 0  # only a clawback goes below zero
    status, body = _until(gateway, key, 402)
    assert status == 402, body
    assert User.objects.get(pk=user.pk).suspended_at is None  # the dispute is closed
