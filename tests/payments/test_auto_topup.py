"""Auto top-up (payments.auto_topup) and billing mail (accounts.emails): a card kept at a
purchase is charged off-session at the Stripe double when available credit falls under the
threshold, once however many runs race; a declining card is retried after a pause and, after
three declines in a row, auto top-up turns itself off and says so by mail; receipts and the
low-balance notice are mailed after commit."""

from __future__ import annotations

import threading
from datetime import timedelta
from decimal import Decimal

import httpx
import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import User
from billing.models import LedgerEntry
from payments.auto_topup import auto_topup_run
from payments.low_balance import low_balance_notify
from payments.models import BillingSettings, Payment
from tests.payments.conftest import STRIPE_KEY, balance, checkout, control, deliver

DECLINES_LATER = "4000000000000341"  # attaches, then every charge is declined


def _buy_keeping_card(client: Client, double: str, capture) -> Payment:
    body = checkout(client, amount="10", save_card=True).json()
    paid = control(double, f"checkout/sessions/{body['session_id']}/pay")
    with capture(execute=True):  # the card is read from Stripe after commit
        deliver(Client(), paid["delivery"])
    return Payment.objects.get(pk=body["payment_id"])


def _spend(user: User, amount: str) -> None:
    from billing.services import ledger_entry_add

    ledger_entry_add(
        user_id=user.pk,
        kind="usage",
        amount=-Decimal(amount),
        reference=f"spend:{user.pk}:{amount}:{timezone.now().timestamp()}",
    )


def _settings(client: Client, **body):
    return client.patch("/user/billing-settings", body, content_type="application/json")


@pytest.mark.django_db
def test_a_kept_card_tops_up_once_when_credit_runs_low(
    stripe_on, customer, django_capture_on_commit_callbacks, mailoutbox
):
    user, client = customer()
    _buy_keeping_card(client, stripe_on, django_capture_on_commit_callbacks)
    shown = client.get("/user/billing-settings").json()["auto_topup"]
    assert shown["card"].endswith("…4242") and shown["enabled"] is False
    answer = _settings(
        client, auto_topup_enabled=True, auto_topup_threshold="5", auto_topup_amount="25"
    )
    assert answer.status_code == 200 and answer.json()["auto_topup"]["enabled"] is True
    assert auto_topup_run() == 0  # 10 available: above 5
    _spend(user, "6")
    with django_capture_on_commit_callbacks(execute=True):
        assert auto_topup_run() == 1
    assert balance(user) == Decimal("29")
    assert auto_topup_run() == 0  # back above the threshold
    topup = Payment.objects.get(user=user, kind="auto_topup")
    assert (topup.status, topup.amount_cents, topup.payment_intent_id[:3]) == ("paid", 2500, "pi_")
    receipts = [m for m in mailoutbox if m.subject == "Your Gatewayz receipt"]
    assert len(receipts) == 2 and "25 credits were added" in receipts[-1].body
    assert receipts[-1].to == [user.email]


@pytest.mark.django_db(transaction=True)
def test_racing_runs_charge_once(stripe_on, customer):
    if connection.vendor != "postgresql":
        pytest.skip("row locks: Postgres")
    user, client = customer()
    body = checkout(client, amount="10", save_card=True).json()
    paid = control(stripe_on, f"checkout/sessions/{body['session_id']}/pay")
    deliver(Client(), paid["delivery"])  # committed: the card is kept on commit
    _settings(client, auto_topup_enabled=True, auto_topup_threshold="50", auto_topup_amount="20")
    counts: list[int] = []
    barrier = threading.Barrier(6)

    def run() -> None:
        barrier.wait()
        try:
            counts.append(auto_topup_run())
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(counts) == 1
    assert Payment.objects.filter(user=user, kind="auto_topup").count() == 1
    assert balance(user) == Decimal("30")


@pytest.mark.django_db
def test_three_declines_turn_it_off_and_say_so(
    stripe_on, customer, django_capture_on_commit_callbacks, mailoutbox, settings
):
    user, client = customer()
    _buy_keeping_card(client, stripe_on, django_capture_on_commit_callbacks)
    # The customer's card now declines (it attaches, then every charge fails).
    from djstripe.models import Customer

    customer_id = Customer.objects.get(subscriber=user).id
    auth = (STRIPE_KEY, "")
    method = httpx.post(
        f"{stripe_on}/v1/payment_methods",
        auth=auth,
        data={
            "type": "card",
            "card[number]": DECLINES_LATER,
            "card[exp_month]": "12",
            "card[exp_year]": "2040",
            "card[cvc]": "123",
        },
    ).json()
    httpx.post(
        f"{stripe_on}/v1/payment_methods/{method['id']}/attach",
        auth=auth,
        data={"customer": customer_id},
    )
    BillingSettings.objects.filter(user=user).update(payment_method_id=method["id"])
    _settings(client, auto_topup_enabled=True, auto_topup_threshold="20", auto_topup_amount="20")

    later = timezone.now()
    for _ in range(3):
        with django_capture_on_commit_callbacks(execute=True):
            auto_topup_run(now=later)
        assert auto_topup_run(now=later) == 0  # waits before charging a declining card again
        later += timedelta(seconds=settings.GATEWAYZ_AUTO_TOPUP_RETRY_SECONDS + 1)
    row = BillingSettings.objects.get(user=user)
    assert (row.auto_topup_enabled, row.auto_topup_failures, row.auto_topup_payment) == (
        False,
        3,
        None,
    )
    assert balance(user) == Decimal("10")  # nothing granted
    assert Payment.objects.filter(user=user, kind="auto_topup", status="failed").count() == 3
    subjects = [m.subject for m in mailoutbox]
    assert subjects.count("Your Gatewayz payment failed") == 3
    assert subjects.count("Gatewayz auto top-up is off") == 1
    assert auto_topup_run(now=later) == 0
    again = _settings(client, auto_topup_enabled=True)
    assert again.json()["auto_topup"]["failures"] == 0  # turned on again: a fresh start


@pytest.mark.django_db
@pytest.mark.smoke
def test_auto_top_up_needs_a_kept_card_and_an_amount_in_range(customer):
    _, client = customer()
    answer = _settings(client, auto_topup_enabled=True)
    assert answer.status_code == 400 and answer.json()["code"] == "no_saved_card"
    assert _settings(client, auto_topup_amount="1").json()["param"] == "auto_topup_amount"
    assert _settings(client, auto_topup_threshold="-1").status_code == 400
    assert not BillingSettings.objects.get().auto_topup_enabled


@pytest.mark.django_db
@pytest.mark.smoke
def test_the_low_balance_notice_is_mailed_once_until_the_balance_recovers(
    customer, django_capture_on_commit_callbacks, mailoutbox
):
    user, client = customer(credit="10")
    assert _settings(client, low_balance_threshold="5").status_code == 200
    with django_capture_on_commit_callbacks(execute=True):
        assert low_balance_notify() == 0
        _spend(user, "6")
        assert low_balance_notify() == 1
        assert low_balance_notify() == 0  # told once
    assert mailoutbox[-1].subject == "Your Gatewayz balance is low"
    assert "4.00 credits" in mailoutbox[-1].body
    from billing.services import credit_grant

    credit_grant(user=user, amount=Decimal("10"), reference=f"back:{user.pk}")
    with django_capture_on_commit_callbacks(execute=True):
        assert low_balance_notify() == 0  # recovered: reset
        _spend(user, "11")
        assert low_balance_notify() == 1
    assert LedgerEntry.objects.filter(user=user).count() == 4
