"""Stripe's events at POST /api/stripe/webhook (payments.webhook, payments.events,
payments.checkout_events): credit granted only when Stripe's signed event says the session
is paid, exactly once however often and however concurrently it is delivered; a bad
signature, a stale one or a tampered body changes nothing; unknown types are kept and
ignored; an amount that is not the payment's grants nothing and is kept as failed."""

from __future__ import annotations

import copy
import threading
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client

from billing.models import LedgerEntry
from mockserver.stripe.events import event_of, signature_of
from payments.models import Payment, StripeEvent
from tests.payments.conftest import WEBHOOK_SECRET, balance, checkout, control, deliver, signed


def _buy(client: Client, double: str, amount: str = "20") -> tuple[Payment, dict]:
    opened = checkout(client, amount=amount).json()
    paid = control(double, f"checkout/sessions/{opened['session_id']}/pay")
    return Payment.objects.get(pk=opened["payment_id"]), paid


@pytest.mark.django_db
def test_a_paid_session_grants_its_credit_once(stripe_on, customer):
    user, client = customer()
    payment, paid = _buy(client, stripe_on, "20")
    assert balance(user) == 0  # paid at Stripe, not yet announced
    first = deliver(Client(), paid["delivery"])
    assert first.status_code == 200 and first.json()["status"] == "processed"
    assert balance(user) == Decimal("20")
    again = deliver(Client(), paid["delivery"])  # Stripe delivers at least once
    assert again.status_code == 200
    assert balance(user) == Decimal("20")
    payment.refresh_from_db()
    assert payment.status == Payment.Status.PAID and payment.payment_intent_id.startswith("pi_")
    entry = LedgerEntry.objects.get(user=user, kind=LedgerEntry.Kind.PURCHASE)
    assert (entry.amount, entry.reference) == (Decimal("20"), f"payment:{payment.pk}")
    event = StripeEvent.objects.get(pk=paid["event"]["id"])
    assert (event.status, event.attempts) == (StripeEvent.Status.PROCESSED, 1)


@pytest.mark.django_db
def test_the_success_page_redirect_grants_nothing(stripe_on, customer):
    user, client = customer()
    opened = checkout(client, amount="10").json()
    page = client.get(f"/billing/success?session_id={opened['session_id']}")
    assert page.status_code == 200 and b"added as soon as Stripe confirms" in page.content
    assert balance(user) == 0
    assert Client().get("/billing/cancel").status_code == 200


@pytest.mark.django_db
@pytest.mark.parametrize(
    "forge",
    [
        lambda d: {**d, "signature": signature_of(d["payload"].encode(), "whsec_someone_else")},
        lambda d: {**d, "signature": ""},
        lambda d: {**d, "signature": signature_of(d["payload"].encode(), WEBHOOK_SECRET, 1)},
        lambda d: {**d, "payload": d["payload"].replace('"paid"', '"paid" ')},  # tampered
    ],
    ids=["other secret", "no signature", "replayed (stale)", "tampered body"],
)
def test_forged_stale_or_tampered_events_change_nothing(stripe_on, customer, forge):
    user, client = customer()
    _, paid = _buy(client, stripe_on)
    answer = deliver(Client(), forge(paid["delivery"]))
    assert answer.status_code == 400 and answer.json()["code"] == "invalid_signature"
    assert balance(user) == 0 and not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_a_body_that_is_not_an_event_is_refused(stripe_on):
    for body in (b"not json", b"[1, 2]", b'{"id": 5}'):
        delivery = {"payload": body.decode(), "signature": signature_of(body, WEBHOOK_SECRET)}
        answer = deliver(Client(), delivery)
        assert answer.status_code == 400 and answer.json()["code"] == "invalid_payload"
    assert not StripeEvent.objects.exists()


@pytest.mark.django_db
def test_unknown_event_types_are_kept_and_ignored(stripe_on):
    event = event_of("customer.tax_id.created", {"id": "txi_1", "object": "tax_id"})
    answer = deliver(Client(), signed(event))
    assert answer.status_code == 200 and answer.json()["status"] == "ignored"
    stored = StripeEvent.objects.get(pk=event["id"])
    assert stored.note == "no handler for customer.tax_id.created"
    assert stored.payload == event


@pytest.mark.django_db
def test_a_session_gatewayz_did_not_open_is_ignored(stripe_on, customer):
    _, client = customer()
    _, paid = _buy(client, stripe_on)
    event = copy.deepcopy(paid["event"])
    event["id"] = "evt_test_other"
    event["data"]["object"]["id"] = "cs_test_not_ours"
    assert deliver(Client(), signed(event)).json()["status"] == "ignored"


@pytest.mark.django_db
def test_an_amount_other_than_the_payments_grants_nothing_and_is_kept_as_failed(
    stripe_on, customer
):
    user, client = customer()
    _, paid = _buy(client, stripe_on, "20")
    event = copy.deepcopy(paid["event"])
    event["data"]["object"]["amount_total"] = 100  # 1 $ paid for 20 credits
    answer = deliver(Client(), signed(event))
    assert answer.status_code == 500 and answer.json()["code"] == "processing_failed"
    stored = StripeEvent.objects.get(pk=event["id"])
    assert stored.status == StripeEvent.Status.FAILED and "2000 usd" in stored.note
    assert balance(user) == 0


@pytest.mark.django_db
def test_a_delayed_payment_grants_when_it_settles_and_not_if_it_fails(stripe_on, customer):
    user, client = customer()
    for outcome, credit in (("succeeded", Decimal("15")), ("failed", Decimal("15"))):
        opened = checkout(client, amount="15").json()
        session = opened["session_id"]
        completed = control(stripe_on, f"checkout/sessions/{session}/pay", delayed="1")
        deliver(Client(), completed["delivery"])
        payment = Payment.objects.get(pk=opened["payment_id"])
        assert payment.status == Payment.Status.PROCESSING
        settled = control(stripe_on, f"checkout/sessions/{session}/settle", outcome=outcome)
        assert deliver(Client(), settled["delivery"]).status_code == 200
        payment.refresh_from_db()
        assert payment.status == ("paid" if outcome == "succeeded" else "failed")
        assert balance(user) == credit


@pytest.mark.django_db
def test_an_abandoned_session_expires(stripe_on, customer):
    user, client = customer()
    opened = checkout(client, amount="10").json()
    import stripe

    stripe.StripeClient("sk_test_x", base_addresses={"api": stripe_on}).v1.checkout.sessions.expire(
        opened["session_id"]
    )
    # The double announced it (no webhook configured here): build the same event.
    event = event_of(
        "checkout.session.expired",
        {
            "id": opened["session_id"],
            "object": "checkout.session",
            "mode": "payment",
            "amount_total": 1000,
            "currency": "usd",
            "status": "expired",
            "payment_status": "unpaid",
            "payment_intent": None,
        },
    )
    deliver(Client(), signed(event))
    assert Payment.objects.get(pk=opened["payment_id"]).status == Payment.Status.EXPIRED
    assert balance(user) == 0


@pytest.mark.django_db(transaction=True)
def test_the_same_event_delivered_twice_at_once_grants_once(stripe_on, customer):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: Postgres")
    user, client = customer()
    _, paid = _buy(client, stripe_on, "30")
    answers: list[int] = []
    barrier = threading.Barrier(8)

    def post() -> None:
        barrier.wait()
        try:
            answers.append(deliver(Client(), paid["delivery"]).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=post) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert answers == [200] * 8
    assert balance(user) == Decimal("30")
    assert LedgerEntry.objects.filter(user=user, kind="purchase").count() == 1
    assert StripeEvent.objects.get(pk=paid["event"]["id"]).attempts == 1
