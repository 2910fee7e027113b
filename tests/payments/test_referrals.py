"""Referrals (payments.referrals): an 8-character code per user; a new customer applies it;
when their first purchase of at least $10 completes, both get $10, once; no self-referral,
at most 10 people per code, only before one's first purchase."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.test import Client

from payments.models import Referral
from tests.payments.conftest import balance, checkout, control, deliver

pytestmark = pytest.mark.django_db


def _apply(client: Client, code: str):
    return client.post("/referral/apply", {"code": code}, content_type="application/json")


def _buy(client: Client, double: str, amount: str) -> None:
    body = checkout(client, amount=amount).json()
    deliver(Client(), control(double, f"checkout/sessions/{body['session_id']}/pay")["delivery"])


def test_both_get_the_bonus_once_on_the_first_purchase_of_ten_dollars(stripe_on, customer):
    referrer, referrer_client = customer()
    code = referrer_client.get("/referral/code").json()["code"]
    assert len(code) == 8 and referrer_client.get("/referral/code").json()["code"] == code
    referee, client = customer()
    assert _apply(client, code.lower()).status_code == 201
    _buy(client, stripe_on, "5")  # under the minimum: no bonus yet
    assert balance(referrer) == 0 and balance(referee) == Decimal("5")
    _buy(client, stripe_on, "10")
    assert balance(referrer) == Decimal("10") and balance(referee) == Decimal("25")
    _buy(client, stripe_on, "10")  # granted once
    assert balance(referrer) == Decimal("10") and balance(referee) == Decimal("35")
    stats = referrer_client.get("/referral/stats").json()
    assert (stats["uses"], stats["rewarded"], stats["earned"]) == (1, 1, "10")
    assert stats["referrals"][0]["email"].startswith(referee.email[0] + "***@")


def test_refusals(stripe_on, customer, settings):
    settings.GATEWAYZ_REFERRAL_MAX_USES = 1
    _owner, owner_client = customer()
    code = owner_client.get("/referral/code").json()["code"]
    assert _apply(owner_client, code).json()["code"] == "SELF_REFERRAL"
    assert _apply(owner_client, "ZZZZZZZZ").status_code == 404
    _first, first_client = customer()
    assert _apply(first_client, code).status_code == 201
    again = _apply(first_client, code)
    assert (again.status_code, again.json()["code"]) == (409, "ALREADY_REFERRED")
    _, late_client = customer()
    full = _apply(late_client, code)
    assert (full.status_code, full.json()["code"]) == (409, "MAX_USES_EXCEEDED")
    _buyer, buyer_client = customer()
    _buy(buyer_client, stripe_on, "10")
    settings.GATEWAYZ_REFERRAL_MAX_USES = 10
    old = _apply(buyer_client, code)
    assert (old.status_code, old.json()["code"]) == (400, "NOT_NEW")
    assert Referral.objects.count() == 1
