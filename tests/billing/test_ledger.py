"""Ledger and hold rules, including under concurrent writers."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.utils import timezone

from accounts.services import user_create
from billing.models import CreditAccount, CreditHold, LedgerEntry
from billing.pricing import hold_amount, usage_cost
from billing.services import (
    InsufficientCredit,
    credit_grant,
    credit_hold_create,
    credit_holds_release_expired,
    ledger_entry_add,
)
from billing.settlement import request_settle
from core.outcome import RequestOutcome
from core.usage import Usage
from providers.catalog import Deployment


def _deployment(input_price: str, output_price: str, cached: str = "0") -> Deployment:
    return Deployment(
        "p",
        "openai",
        "http://x",
        "",
        1,
        1,
        "m",
        Decimal(input_price),
        Decimal(output_price),
        Decimal(cached),
    )


def test_it_prices_usage_exactly():
    d = _deployment("0.075", "0.30", "0.0375")
    assert usage_cost(Usage(1, 0, 0), d) == Decimal("0.000000075")
    assert usage_cost(Usage(1000, 500, 400), d) == Decimal("0.000210")  # 600*.075+400*.0375+500*.3
    assert hold_amount(body_bytes=100, max_output_tokens=10, deployment=d) == Decimal("0.0000105")


@pytest.mark.django_db
def test_it_applies_a_reference_once():
    user = user_create(email="a@example.com")
    first = credit_grant(user=user, amount=Decimal("2"), reference="stripe:evt_1")
    again = credit_grant(user=user, amount=Decimal("2"), reference="stripe:evt_1")

    assert first.pk == again.pk
    assert CreditAccount.objects.get(user=user).balance == Decimal("2")
    assert first.balance_after == Decimal("2")


@pytest.mark.django_db
def test_it_holds_only_what_is_available_and_releases_expired_holds():
    user = user_create(email="b@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_hold_create(user_id=user.pk, request_id="r1", amount=Decimal("0.6"))
    with pytest.raises(InsufficientCredit):
        credit_hold_create(user_id=user.pk, request_id="r2", amount=Decimal("0.5"))

    CreditHold.objects.filter(request_id="r1").update(expires_at=timezone.now() - timedelta(1))
    assert credit_holds_release_expired() == 1
    assert credit_holds_release_expired() == 0
    assert CreditAccount.objects.get(user=user).held == 0


@pytest.mark.django_db
def test_it_settles_once_however_often_it_is_retried():
    user = user_create(email="c@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_hold_create(user_id=user.pk, request_id="r1", amount=Decimal("0.5"))
    outcome = RequestOutcome(
        request_id="r1",
        user_id=user.pk,
        api_key_id=None,
        endpoint="chat",
        requested_model="m",
        status=200,
        total_latency_ms=1.0,
        cost=Decimal("0.25"),
        held=True,
    )

    request_settle(outcome=outcome)
    request_settle(outcome=outcome)

    account = CreditAccount.objects.get(user=user)
    assert (account.balance, account.held) == (Decimal("0.75"), 0)
    assert LedgerEntry.objects.filter(reference="r1").count() == 1


def test_it_applies_a_reference_once_under_concurrent_writers(live_db):
    user = user_create(email=f"race-{timezone.now().timestamp()}@example.com")

    def grant(_: int) -> int:
        try:
            return ledger_entry_add(
                user_id=user.pk, kind="grant", amount=Decimal("1"), reference=f"race:{user.pk}"
            ).pk
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(grant, range(16)))

    assert len(ids) == 1
    assert CreditAccount.objects.get(user=user).balance == Decimal("1")


def test_it_never_over_holds_under_concurrent_admissions(live_db):
    user = user_create(email=f"holds-{timezone.now().timestamp()}@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference=f"g:{user.pk}")

    def hold(i: int) -> bool:
        try:
            credit_hold_create(user_id=user.pk, request_id=f"h{user.pk}-{i}", amount=Decimal("0.1"))
            return True
        except InsufficientCredit:
            return False
        finally:
            connection.close()

    with ThreadPoolExecutor(8) as pool:
        admitted = list(pool.map(hold, range(30)))

    assert admitted.count(True) == 10
    assert CreditAccount.objects.get(user=user).held == Decimal("1")
