"""Buying credits (payments.checkout, payments.api): the packages on sale, a Checkout
Session at the Stripe double for a pack or a custom amount with the top-up fee, one Stripe
Customer per user; bad input refused with nothing recorded; without Stripe keys, a clear
"not configured" and nothing else broken."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client
from djstripe.models import Customer

from payments.models import CreditPack, Payment
from tests.payments.conftest import balance, checkout

pytestmark = pytest.mark.django_db


@pytest.fixture
def packs() -> list[CreditPack]:
    return [
        CreditPack.objects.create(name="Starter", price_cents=1000, credits=Decimal("10")),
        CreditPack.objects.create(name="Bulk", price_cents=4500, credits=Decimal("50"), position=1),
        CreditPack.objects.create(name="Old", price_cents=100, credits=1, active=False),
    ]


def test_the_packages_on_sale_are_public_with_the_fee_and_custom_range(packs, settings):
    settings.GATEWAYZ_TOPUP_FEE_PERCENT = Decimal("5")
    settings.GATEWAYZ_TOPUP_FEE_MIN = Decimal("0.80")
    answer = Client().get("/api/stripe/credit-packages")
    assert answer.status_code == 200
    body = answer.json()
    assert [(p["name"], p["price"], p["credits"], p["fee_cents"]) for p in body["packages"]] == [
        ("Starter", "10.00", "10.000000000000", 80),  # 5 % is 50 ¢: the minimum, 80 ¢
        ("Bulk", "45.00", "50.000000000000", 225),
    ]
    assert body["custom_amount"] == {"min": "5", "max": "10000"}
    assert body["fee"] == {"percent": "5", "min": "0.8"}


def test_a_pack_opens_a_checkout_session_and_grants_nothing_yet(
    stripe_on, packs, customer, settings
):
    settings.GATEWAYZ_TOPUP_FEE_PERCENT = Decimal("3")
    user, client = customer()
    answer = checkout(client, package_id=packs[0].pk)
    assert answer.status_code == 201, answer.content
    body = answer.json()
    assert body["url"].startswith(f"{stripe_on}/pay/cs_test_")
    assert (body["credits"], body["amount_cents"], body["fee_cents"]) == ("10", 1030, 30)
    payment = Payment.objects.get(pk=body["payment_id"])
    assert (
        payment.status == Payment.Status.OPEN and payment.checkout_session_id == body["session_id"]
    )
    assert balance(user) == 0  # granted only when Stripe's event says it is paid


def test_a_custom_amount_and_one_stripe_customer_per_user(stripe_on, customer):
    user, client = customer()
    first = checkout(client, amount="25.50").json()
    second = checkout(client, amount=7).json()
    assert (first["credits"], first["amount_cents"]) == ("25.5", 2550)
    assert (second["credits"], second["amount_cents"]) == ("7", 700)
    customers = Customer.objects.filter(subscriber=user)
    assert customers.count() == 1 and customers.get().email == user.email


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({}, "package_id"),
        ({"package_id": 1, "amount": "10"}, "package_id"),
        ({"amount": "4.99"}, "amount"),  # below the minimum
        ({"amount": "10000.01"}, "amount"),
        ({"amount": "10.001"}, "amount"),  # not dollars and cents
        ({"amount": "ten"}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"amount": "-10"}, "amount"),
        ({"package_id": 999999}, "package_id"),
        ({"amount": "10", "success_url": "https://evil.example/steal"}, "success_url"),
    ],
)
def test_bad_purchases_are_refused_and_record_nothing(stripe_on, customer, body, param):
    _, client = customer()
    answer = checkout(client, **body)
    assert answer.status_code == 400, answer.content
    assert answer.json()["param"] == param
    assert not Payment.objects.exists()


def test_an_inactive_pack_cannot_be_bought(stripe_on, packs, customer):
    _, client = customer()
    answer = checkout(client, package_id=packs[2].pk)
    assert answer.status_code == 400 and "no credit package" in answer.json()["detail"]


def test_checkout_needs_a_login_or_a_key_with_the_billing_scope(stripe_on):
    assert checkout(Client(), amount="10").status_code in (401, 403)


@pytest.mark.smoke
def test_without_stripe_keys_payments_say_they_are_not_configured(customer, settings):
    settings.STRIPE_SECRET_KEY = ""
    settings.STRIPE_WEBHOOK_SECRET = ""
    _, client = customer()
    answer = checkout(client, amount="10")
    assert answer.status_code == 503
    assert answer.json()["code"] == "payments_not_configured"
    assert "not configured" in answer.json()["detail"]
    assert Client().get("/api/stripe/credit-packages").json()["payments_configured"] is False
    hook = Client().post("/api/stripe/webhook", data="{}", content_type="application/json")
    assert hook.status_code == 503 and hook.json()["code"] == "payments_not_configured"
    assert client.get("/user/balance").status_code == 200  # everything else works
    assert not Payment.objects.exists()
