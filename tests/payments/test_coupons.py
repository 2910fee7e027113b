"""Coupons (payments.coupons): worth credits when redeemed, or a percentage off a purchase at
checkout; every rule refused with the seed's code in the body; exact under concurrency (50
customers redeem a one-use coupon at once: one wins); a percentage coupon's use is taken
when its checkout opens and given back if the payment never completes."""

from __future__ import annotations

import threading
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.services import user_create
from billing.models import LedgerEntry
from payments.models import Coupon, CouponRedemption, Payment
from tests.payments.conftest import balance, checkout, control, deliver


def _redeem(client: Client, code: str):
    return client.post("/coupons/redeem", {"code": code}, content_type="application/json")


@pytest.mark.django_db
@pytest.mark.smoke
def test_a_credits_coupon_grants_its_value_once_per_user(customer):
    Coupon.objects.create(code="welcome5", value=Decimal("5"), max_uses=100)
    user, client = customer()
    answer = _redeem(client, " Welcome5 ")  # matched without case or spaces
    assert answer.status_code == 200 and answer.json() == {"code": "WELCOME5", "credits": "5"}
    assert balance(user) == Decimal("5")
    again = _redeem(client, "WELCOME5")
    assert again.status_code == 409 and again.json()["code"] == "ALREADY_REDEEMED"
    assert balance(user) == Decimal("5")
    assert LedgerEntry.objects.get(user=user, kind="grant").memo == "coupon WELCOME5"


@pytest.mark.django_db
@pytest.mark.smoke
def test_each_refusal_has_its_code_and_changes_nothing(customer):
    now = timezone.now()
    user, client = customer()
    other, _ = customer()
    Coupon.objects.create(code="OFF", value=1, active=False)
    Coupon.objects.create(code="SOON", value=1, valid_from=now + timedelta(days=1))
    Coupon.objects.create(code="OLD", value=1, valid_until=now - timedelta(seconds=1))
    Coupon.objects.create(code="THEIRS", value=1, user=other)
    Coupon.objects.create(code="GONE", value=1, max_uses=0)
    Coupon.objects.create(code="PCT", kind="percent", value=20)
    expected = {
        "NOPE": (404, "NOT_FOUND"),
        "OFF": (400, "INACTIVE"),
        "SOON": (400, "NOT_YET_ACTIVE"),
        "OLD": (400, "EXPIRED"),
        "THEIRS": (400, "NOT_ASSIGNED"),
        "GONE": (409, "MAX_USES_EXCEEDED"),
        "PCT": (400, "WRONG_KIND"),
    }
    for code, (status, error) in expected.items():
        answer = _redeem(client, code)
        assert (answer.status_code, answer.json()["code"]) == (status, error), code
    assert _redeem(client, "").status_code == 400
    assert balance(user) == 0 and not CouponRedemption.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_one_use_coupon_redeemed_by_50_customers_at_once_is_won_once():
    if connection.vendor != "postgresql":
        pytest.skip("row locks: Postgres")
    coupon = Coupon.objects.create(code="ONLYONE", value=Decimal("7"), max_uses=1)
    people = [user_create(email=f"{uuid.uuid4().hex[:10]}@example.com") for _ in range(50)]
    answers: list[tuple[int, str]] = []
    barrier = threading.Barrier(50)

    def redeem(person) -> None:
        client = Client()
        client.force_login(person)
        barrier.wait()
        try:
            answer = _redeem(client, "ONLYONE")
            answers.append((answer.status_code, answer.json().get("code", "")))
        finally:
            connection.close()

    threads = [threading.Thread(target=redeem, args=(p,)) for p in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers)[0] == (200, "ONLYONE")
    assert sorted(answers)[1:] == [(409, "MAX_USES_EXCEEDED")] * 49
    coupon.refresh_from_db()
    assert coupon.uses == 1 and CouponRedemption.objects.count() == 1
    assert LedgerEntry.objects.filter(reference__startswith="coupon:").count() == 1


@pytest.mark.django_db
def test_a_percentage_coupon_takes_its_share_off_a_purchase(stripe_on, customer):
    Coupon.objects.create(code="HALF", kind="percent", value=50, max_uses=1)
    user, client = customer()
    opened = checkout(client, amount="20", coupon="half")
    assert opened.status_code == 201, opened.content
    body = opened.json()
    assert (body["credits"], body["amount_cents"], body["discount_cents"]) == ("20", 1000, 1000)
    paid = control(stripe_on, f"checkout/sessions/{body['session_id']}/pay")
    deliver(Client(), paid["delivery"])
    assert balance(user) == Decimal("20")  # 20 credits for 10 $
    _second, _ = customer()
    _, other_client = customer()
    refused = checkout(other_client, amount="20", coupon="HALF")
    assert refused.status_code == 409 and refused.json()["code"] == "MAX_USES_EXCEEDED"
    assert refused.json()["param"] == "coupon"


@pytest.mark.django_db
def test_a_coupon_use_comes_back_when_its_checkout_expires(stripe_on, customer):
    from mockserver.stripe.events import event_of
    from tests.payments.conftest import signed

    coupon = Coupon.objects.create(code="TRY", kind="percent", value=10, max_uses=1)
    _, client = customer()
    body = checkout(client, amount="10", coupon="TRY").json()
    coupon.refresh_from_db()
    assert coupon.uses == 1
    expired = event_of(
        "checkout.session.expired",
        {
            "id": body["session_id"],
            "object": "checkout.session",
            "mode": "payment",
            "amount_total": body["amount_cents"],
            "currency": "usd",
            "status": "expired",
        },
    )
    deliver(Client(), signed(expired))
    coupon.refresh_from_db()
    assert coupon.uses == 0 and not CouponRedemption.objects.exists()
    assert Payment.objects.get(pk=body["payment_id"]).status == "expired"
    _, later = customer()
    assert checkout(later, amount="10", coupon="TRY").status_code == 201
