"""The settings page: the customer's own provider keys (BYOK) added, replaced and deleted;
deleting the account (password and a typed confirmation) revokes the keys, deletes chats
and provider keys, removes the address and keeps the ledger."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.test import Client

from accounts.models import ApiKey, User
from accounts.services import api_key_create, user_create
from billing.models import LedgerEntry
from billing.services import credit_grant
from chats.models import ChatSession
from providers.models import Provider, ProviderKey

PASSWORD = "a long and private passphrase"


@pytest.fixture
def customer(db):
    user = user_create(email=f"s-{uuid.uuid4().hex[:10]}@example.com", password=PASSWORD)
    client = Client()
    client.force_login(user)
    return user, client


@pytest.mark.smoke
def test_own_provider_keys_are_kept_replaced_and_deleted(customer):
    user, client = customer
    provider = Provider.objects.create(
        slug=f"p{uuid.uuid4().hex[:6]}", name="Acme AI", enabled=True
    )
    added = client.post(
        "/settings", {"provider": provider.slug, "key": "sk-acme-0001-secret"}, follow=True
    )
    assert "Added your Acme AI key" in added.content.decode()
    assert "sk-acme-0001-secret" not in added.content.decode()  # only its hint
    client.post("/settings", {"provider": provider.slug, "key": "sk-acme-0002-secret"})
    [kept] = ProviderKey.objects.filter(user=user)
    assert kept.hint.endswith("cret")
    refused = client.post("/settings", {"provider": provider.slug, "key": "has space in it"})
    assert refused.status_code == 422 and b"no spaces" in refused.content
    client.post(f"/settings/provider-keys/{kept.pk}/delete")
    assert not ProviderKey.objects.filter(user=user).exists()


@pytest.mark.smoke
def test_deleting_the_account_keeps_the_books_and_nothing_else(customer):
    user, client = customer
    api_key, _ = api_key_create(user=user, name="app")
    credit_grant(user=user, amount=Decimal(3), reference=f"seed:{user.pk}")
    ChatSession.objects.create(user=user, title="private")
    wrong = client.post(
        "/settings/delete", {"password": "nope", "confirmation": "delete my account"}
    )
    assert wrong.status_code == 422 and User.objects.get(pk=user.pk).is_active
    untyped = client.post("/settings/delete", {"password": PASSWORD, "confirmation": "yes"})
    assert untyped.status_code == 422
    gone = client.post(
        "/settings/delete", {"password": PASSWORD, "confirmation": "Delete my account"}, follow=True
    )
    assert gone.redirect_chain[-1][0] == "/"
    user.refresh_from_db()
    assert user.email == f"deleted-{user.pk}@deleted.invalid" and not user.is_active
    assert not user.has_usable_password()
    assert ApiKey.objects.get(pk=api_key.pk).revoked_at is not None
    assert not ChatSession.objects.filter(user=user).exists()
    assert LedgerEntry.objects.filter(user=user).exists()  # the books stay
    assert client.get("/dashboard").status_code == 302  # logged out


@pytest.mark.smoke
def test_a_web_sign_up_gets_the_same_trial_as_an_api_one(db, settings, mailoutbox):
    from billing.models import Trial

    settings.GATEWAYZ_TRIAL_CREDIT = Decimal(2)
    email = f"trial-{uuid.uuid4().hex[:8]}@example.com"
    answer = Client().post("/signup", {"email": email, "password1": PASSWORD})
    assert answer.status_code == 302, answer.content
    user = User.objects.get(email=email)
    assert Trial.objects.filter(user=user).exists()
    assert "confirm-email" in mailoutbox[0].body  # the verification link, mailed


@pytest.mark.smoke
def test_ended_playground_keys_are_pruned_a_week_on(customer):
    from datetime import timedelta

    from django.utils import timezone

    from accounts.services import playground_keys_prune

    user, _ = customer
    now = timezone.now()
    old, _ = api_key_create(
        user=user, name="Playground", purpose="playground", expires_at=now - timedelta(days=8)
    )
    recent, _ = api_key_create(
        user=user, name="Playground", purpose="playground", expires_at=now - timedelta(days=1)
    )
    own, _ = api_key_create(user=user, name="mine", expires_at=now - timedelta(days=30))
    assert playground_keys_prune(now=now) == 1
    assert set(ApiKey.objects.filter(user=user).values_list("pk", flat=True)) == {recent.pk, own.pk}
    assert old.pk not in ApiKey.objects.values_list("pk", flat=True)
