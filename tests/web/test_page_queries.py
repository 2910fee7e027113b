"""Each customer page's queries are bounded, whatever the customer's history: the dashboard
reads rollups (never the request log's rows but its latest ten), within 10 queries."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.services import api_key_create, user_create
from accounts.verification import user_email_verified
from billing.models import RequestLog
from tests.support.request_logs import rolled_up


@pytest.fixture
def busy_customer(db):
    user = user_create(email=f"busy-{uuid.uuid4().hex[:8]}@example.com", password="x" * 12)
    user_email_verified(user)
    keys = [api_key_create(user=user, name=f"key {i}")[0] for i in range(3)]
    now = timezone.now()
    RequestLog.objects.bulk_create(
        RequestLog(
            request_id=f"busy-{i}",
            user=user,
            api_key=keys[i % 3],
            endpoint="chat.completions",
            served_model=f"test/model-{i % 7}",
            provider="mock",
            status=200 if i % 9 else 502,
            prompt_tokens=10,
            completion_tokens=5,
            total_latency_ms=120,
            created_at=now - timedelta(minutes=7 * i),
        )
        for i in range(1500)
    )
    rolled_up(days=8)
    client = Client()
    client.force_login(user)
    return client


@pytest.mark.smoke
@pytest.mark.parametrize("span", ["24h", "7d", "30d"])
def test_the_dashboard_is_a_few_queries(busy_customer, django_assert_max_num_queries, span):
    with django_assert_max_num_queries(10):
        answer = busy_customer.get("/dashboard", {"range": span})
    assert answer.status_code == 200
    assert b"test/model-" in answer.content


@pytest.mark.smoke
@pytest.mark.parametrize(
    ("path", "most"),
    [("/keys", 12), ("/keys/usage", 12), ("/settings", 12), ("/billing", 16), ("/chats", 12)],
)
def test_other_customer_pages_are_a_few_queries(
    busy_customer, django_assert_max_num_queries, path, most
):
    with django_assert_max_num_queries(most):
        answer = busy_customer.get(path)
    assert answer.status_code == 200


@pytest.mark.smoke
def test_money_on_summaries_never_reads_zero_when_something_was_spent():
    from decimal import Decimal

    from core.templatetags.ui import cents, dollars, dollars_precise

    assert dollars(Decimal("1234.565")) == "$1,234.57"
    assert dollars(Decimal("0.000022")) == "< $0.01"
    assert dollars(Decimal(0)) == "$0.00"
    assert dollars(Decimal("-2.5")) == "-$2.50"
    assert dollars_precise(Decimal("0.0000224")) == "$0.000022"
    assert dollars_precise(Decimal("3")) == "$3.00"
    assert cents(1999) == "$19.99"
