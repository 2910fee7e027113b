"""Payments switched on against the Stripe double (tests/conftest.py: mockserver.stripe in
front of localstripe). Events reach the webhook as Stripe sends them: a test
takes the signed delivery the double answers and posts it, or lets the double post it to a
live server."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
import stripe
from django.test import Client

from accounts.models import User
from accounts.services import user_create
from billing.models import CreditAccount
from tests.conftest import STRIPE_KEY, WEBHOOK_SECRET

__all__ = ["STRIPE_KEY", "WEBHOOK_SECRET"]


@pytest.fixture
def stripe_on(settings: Any, stripe_double: str) -> Iterator[str]:
    """Payments configured, every Stripe call to the double."""
    settings.STRIPE_SECRET_KEY = STRIPE_KEY
    settings.STRIPE_API_BASE = stripe_double
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    before, stripe.api_base = stripe.api_base, stripe_double
    yield stripe_double
    stripe.api_base = before


@pytest.fixture
def customer() -> Callable[..., tuple[User, Client]]:
    def make(credit: str = "0") -> tuple[User, Client]:
        user = user_create(email=f"{uuid.uuid4().hex[:10]}@example.com", password="long pass!")
        if Decimal(credit):
            from billing.services import credit_grant

            credit_grant(user=user, amount=Decimal(credit), reference=f"seed:{user.pk}")
        client = Client()
        client.force_login(user)
        return user, client

    return make


def balance(user: User) -> Decimal:
    return CreditAccount.objects.get(user=user).balance


def control(double: str, path: str, **form: str) -> dict[str, Any]:
    """A test control of the double (what the customer or their bank does)."""
    answer = httpx.post(f"{double}/_double/{path}", data=form, timeout=30)
    assert answer.status_code == 200, answer.text
    result: dict[str, Any] = answer.json()
    return result


def deliver(client: Client, delivery: dict[str, str]) -> Any:
    """Posts a signed delivery to the webhook as Stripe would."""
    return client.post(
        "/api/stripe/webhook",
        data=delivery["payload"],
        content_type="application/json",
        HTTP_STRIPE_SIGNATURE=delivery["signature"],
    )


def signed(event: dict[str, Any], secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    from mockserver.stripe.events import delivery_of

    return delivery_of(event, secret)


def checkout(client: Client, **body: Any) -> Any:
    return client.post("/api/stripe/checkout-session", body, content_type="application/json")
