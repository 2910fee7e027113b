"""The billing page's own forms, in-process: coupons, the referral code, auto top-up and
low-balance settings (with the same rules as the API), the plan section; and without Stripe
the page says so instead of offering a purchase."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import Plan
from accounts.services import user_create
from billing.selectors import balance_of
from payments.models import BillingSettings, Coupon


@pytest.fixture
def customer(db):
    user = user_create(email=f"b-{uuid.uuid4().hex[:10]}@example.com")
    client = Client()
    client.force_login(user)
    return user, client


def _messages(answer) -> str:
    return " ".join(str(m) for m in answer.context["messages"])


@pytest.mark.smoke
def test_without_stripe_the_page_says_so_and_shows_the_rest(customer):
    _, client = customer
    Plan.objects.create(slug="pro", name="Pro", price_cents=2000, allowance=Decimal(25))
    page = client.get("/billing")
    body = page.content.decode()
    assert page.status_code == 200
    assert "not set up on this Gatewayz" in body and "Continue to payment" not in body
    assert page.context["referral"]["code"] in body
    assert "pay as you go" in body


@pytest.mark.smoke
def test_a_coupon_adds_credit_once(customer):
    user, client = customer
    Coupon.objects.create(code="WELCOME5", value=Decimal(5))
    added = client.post("/billing/coupon", {"code": "welcome5"}, follow=True)
    assert "$5.00 of credit added" in _messages(added)
    assert balance_of(user=user).balance == Decimal(5)
    again = client.post("/billing/coupon", {"code": "welcome5"}, follow=True)
    assert "already" in _messages(again).lower()
    assert balance_of(user=user).balance == Decimal(5)
    assert "Type the coupon" in _messages(client.post("/billing/coupon", {"code": ""}, follow=True))


@pytest.mark.smoke
def test_top_up_settings_follow_the_apis_rules(customer):
    user, client = customer
    refused = client.post(
        "/billing/settings",
        {"auto_topup_enabled": "on", "auto_topup_threshold": "5", "auto_topup_amount": "20"},
        follow=True,
    )
    assert "No card is saved" in _messages(refused)
    assert not BillingSettings.objects.get(user=user).auto_topup_enabled
    saved = client.post(
        "/billing/settings",
        {"low_balance_threshold": "3.50", "auto_topup_threshold": "5", "auto_topup_amount": "20"},
        follow=True,
    )
    assert "Saved" in _messages(saved)
    row = BillingSettings.objects.get(user=user)
    assert row.low_balance_threshold == Decimal("3.50") and row.auto_topup_amount == Decimal(20)
    bad = client.post(
        "/billing/settings", {"auto_topup_threshold": "x", "auto_topup_amount": "20"}, follow=True
    )
    assert "Not saved" in _messages(bad)
    # Shown back as asked: in cents, not the stored micro-dollars ("20.000000000000").
    shown = client.get("/billing").content.decode()
    assert 'value="20.00"' in shown and 'value="3.50"' in shown
    assert "000000" not in shown


@pytest.mark.smoke
def test_a_referral_code_is_checked(customer):
    _, client = customer
    friend = user_create(email=f"f-{uuid.uuid4().hex[:10]}@example.com")
    friend_client = Client()
    friend_client.force_login(friend)
    code = friend_client.get("/billing").context["referral"]["code"]
    assert "applied" in _messages(client.post("/billing/referral", {"code": code}, follow=True))
    nope = client.post("/billing/referral", {"code": "NOPE0000"}, follow=True)
    assert "applied" not in _messages(nope)


@pytest.mark.smoke
def test_subscribing_without_stripe_is_refused_in_words(customer):
    _, client = customer
    Plan.objects.create(slug="team", name="Team", price_cents=5000)
    answer = client.post("/billing/plan", {"plan": "team"}, follow=True)
    assert "not set up" in _messages(answer)
