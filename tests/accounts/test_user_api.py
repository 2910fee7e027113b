"""The management API: keys, profile, balance and transactions, by key, JWT or session.
alice owns things; bob is another customer."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from accounts.keys import key_digest
from accounts.models import ApiKey
from accounts.services import api_key_create, user_create
from billing.services import credit_grant, ledger_entry_add

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


@pytest.fixture
def alice():
    user = user_create(email="alice@example.com", password="correct horse battery")
    credit_grant(user=user, amount=Decimal("5.5"), reference="test:alice")
    return user


@pytest.fixture
def bob():
    return user_create(email="bob@example.com", password="another good secret")


def _client_with_key(user) -> tuple[APIClient, ApiKey]:
    api_key, raw = api_key_create(user=user, name="cli")
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, api_key


def test_it_shows_a_new_key_once_and_stores_only_its_digest(alice):
    client, _ = _client_with_key(alice)

    created = client.post("/user/api-keys", {"name": "ci"}, format="json")
    listed = client.get("/user/api-keys")

    assert created.status_code == 201
    raw = created.json()["key"]
    assert raw.startswith("gw_live_") and len(raw) >= 8 + 43
    row = ApiKey.objects.get(pk=created.json()["id"])
    assert row.digest == key_digest(raw) and raw not in (row.prefix, row.digest)
    assert (row.prefix, row.last4) == (raw[:12], raw[-4:])
    assert all("key" not in k and "digest" not in k for k in listed.json()["data"])
    assert {k["name"] for k in listed.json()["data"]} == {"cli", "ci"}


def test_it_revokes_own_keys_only(alice, bob):
    alice_client, alice_key = _client_with_key(alice)
    bob_client, bob_key = _client_with_key(bob)

    assert bob_client.delete(f"/user/api-keys/{alice_key.pk}").status_code == 404
    assert alice_client.delete(f"/user/api-keys/{alice_key.pk}").status_code == 204
    alice_key.refresh_from_db()
    bob_key.refresh_from_db()
    assert alice_key.revoked_at is not None and bob_key.revoked_at is None
    # The revoked key no longer authenticates.
    assert alice_client.get("/user/profile").status_code == 401


def test_it_refuses_expired_keys(alice):
    _, raw = api_key_create(
        user=alice, name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert client.get("/user/profile").status_code == 401


def test_it_reports_balance_and_transactions_exactly(alice, bob):
    client, _ = _client_with_key(alice)
    ledger_entry_add(user_id=alice.pk, kind="usage", amount=Decimal("-0.000000075"), reference="r1")
    ledger_entry_add(user_id=bob.pk, kind="usage", amount=Decimal("-1"), reference="r2")

    balance = client.get("/user/balance").json()
    transactions = client.get("/user/credit-transactions").json()

    assert balance == {
        "balance": "5.499999925",
        "held": "0",
        "available": "5.499999925",
        "allowance": "0",
        "allowance_expires_at": None,
        "purchased": "5.499999925",
        "currency": "credits",
    }
    assert [t["reference"] for t in transactions["results"]] == ["r1", "test:alice"]
    assert Decimal(transactions["results"][0]["amount"]) == Decimal("-0.000000075")


def test_it_authenticates_by_jwt_and_by_session(alice):
    tokens = (
        APIClient()
        .post(
            "/auth/token",
            {"email": "alice@example.com", "password": "correct horse battery"},
            format="json",
        )
        .json()
    )
    jwt_client = APIClient()
    jwt_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")
    session_client = APIClient()
    session_client.force_login(alice)

    for client in (jwt_client, session_client):
        profile = client.get("/user/profile")
        assert profile.status_code == 200
        assert profile.json()["email"] == "alice@example.com" and profile.json()["role"] == "user"


@pytest.mark.parametrize(
    "path", ["/user/api-keys", "/user/balance", "/user/profile", "/user/credit-transactions"]
)
def test_it_refuses_anonymous_and_bad_keys(path):
    assert APIClient().get(path).status_code == 401
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer gw_live_" + "x" * 43)
    assert client.get(path).status_code == 401
