"""GET /user/usage (monitoring.usage_api): the caller's usage from the rollups, by hour or
day, whole or per model, key or provider; nobody else's; bad parameters refused with 400."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.test import Client

from accounts.services import user_create
from billing.models import RequestLog
from monitoring.rollups import rollups_compute

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]
T0 = datetime(2026, 11, 30, 22, 0, tzinfo=UTC)


def _log(user, at: datetime, model: str, cost: str = "0.5") -> None:
    RequestLog.objects.create(
        request_id=uuid.uuid4().hex,
        user=user,
        endpoint="chat.completions",
        requested_model=model,
        served_model=model,
        provider=model.split("/")[0],
        status=200,
        prompt_tokens=100,
        completion_tokens=10,
        cost=Decimal(cost),
        total_latency_ms=100,
        created_at=at,
    )


@pytest.fixture
def alice() -> Client:
    user = user_create(email="usage-alice@example.com", password="long pass!")
    other = user_create(email="usage-bob@example.com")
    for hours, model in ((0, "openai/gpt-4o"), (1, "openai/gpt-4o"), (3, "anthropic/claude")):
        _log(user, T0 + timedelta(hours=hours, minutes=10), model)
    _log(other, T0 + timedelta(minutes=5), "openai/gpt-4o", cost="99")
    rollups_compute(start=T0, end=T0 + timedelta(hours=5), granularity="hour")
    rollups_compute(start=T0, end=T0 + timedelta(days=2), granularity="day")
    client = Client()
    client.force_login(user)
    return client


def test_usage_by_day_and_by_model(alice):
    body = alice.get("/user/usage", {"from": "2026-11-30", "to": "2026-12-02"}).json()
    assert [(p["bucket"][:10], p["requests"], p["cost"]) for p in body["data"]] == [
        ("2026-11-30", 2, "1"),
        ("2026-12-01", 1, "0.5"),
    ]
    by_model = alice.get(
        "/user/usage", {"from": "2026-11-30", "to": "2026-12-02", "group_by": "model"}
    ).json()["data"]
    assert {(p["model"], p["requests"]) for p in by_model} == {
        ("openai/gpt-4o", 2),
        ("anthropic/claude", 1),
    }


def test_usage_by_hour_from_a_time_within_an_hour(alice):
    body = alice.get(
        "/user/usage",
        {"from": "2026-11-30T22:30:00Z", "to": "2026-12-01T02:00:00Z", "granularity": "hour"},
    ).json()
    assert [p["bucket"][11:16] for p in body["data"]] == ["22:00", "23:00", "01:00"]
    assert all(p["prompt_tokens"] == 100 for p in body["data"])


@pytest.mark.parametrize(
    ("params", "param"),
    [
        ({"granularity": "week"}, "granularity"),
        ({"group_by": "colour"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"from": "2026-12-02", "to": "2026-12-01"}, "from"),
        ({"from": "2020-01-01", "to": "2026-12-01", "granularity": "hour"}, "from"),
    ],
)
def test_bad_parameters_are_refused(alice, params, param):
    answer = alice.get("/user/usage", params)
    assert answer.status_code == 400 and answer.json()["param"] == param
