"""Rollups of the request log (monitoring.rollups): per hour and day, per user, key, model
and provider, sums that match the log, errors by type, latency histograms whose summed
buckets give percentiles; recomputing a window leaves the same rows."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from accounts.services import user_create
from billing.models import RequestLog
from monitoring.models import UsageRollup
from monitoring.rollups import (
    percentile,
    rollup_day_from_hours,
    rollups_compute,
    rollups_refresh,
)
from monitoring.stats import Window, rollups_in, totals, users_by

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]
T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def _log(
    user,
    at: datetime,
    *,
    status: int = 200,
    latency: float = 120.0,
    error: str = "",
    model: str = "openai/gpt-4o",
    cost: str = "0.01",
) -> None:
    RequestLog.objects.create(
        request_id=uuid.uuid4().hex,
        user=user,
        endpoint="chat.completions",
        requested_model=model,
        served_model=model,
        provider="openai",
        status=status,
        error_type=error,
        prompt_tokens=10,
        completion_tokens=5,
        cached_tokens=2,
        cost=Decimal(cost) if status == 200 else 0,
        provider_cost=Decimal(cost) / Decimal("1.25") if status == 200 else 0,
        total_latency_ms=latency,
        ttft_ms=latency / 2,
        created_at=at,
    )


def test_an_hour_is_summed_as_the_log_says():
    user = user_create(email="roll@example.com")
    for minute, latency in ((1, 40.0), (5, 120.0), (20, 700.0), (59, 3000.0)):
        _log(user, T0 + timedelta(minutes=minute), latency=latency)
    _log(user, T0 + timedelta(minutes=30), status=502, error="upstream_error")
    _log(user, T0 + timedelta(minutes=31), status=429, error="rate_limited")
    _log(user, T0 + timedelta(hours=1, minutes=1))  # the next hour
    written = rollups_compute(start=T0, end=T0 + timedelta(hours=2), granularity="hour")
    assert written == 4  # an hour's customer row and its total row, for each of two hours
    row = UsageRollup.objects.get(granularity="hour", bucket=T0, total=False)
    assert (row.requests, row.errors, row.prompt_tokens, row.completion_tokens) == (6, 2, 60, 30)
    assert row.errors_by_type == {"upstream_error": 1, "rate_limited": 1}
    assert (row.cost, row.provider_cost) == (Decimal("0.04"), Decimal("0.032"))
    assert sum(row.latency_buckets) == 6 and row.latency_buckets[0] == 1  # 40 ms < 50
    assert percentile(row.latency_buckets, 0.5) == 250
    total = UsageRollup.objects.get(granularity="hour", bucket=T0, total=True)
    assert (total.user_id, total.requests, total.cost) == (None, 6, row.cost)
    assert total.latency_buckets == row.latency_buckets


def test_recomputing_a_window_leaves_the_same_rows_and_days_sum_hours():
    user = user_create(email="again@example.com")
    for hour in range(3):
        _log(user, T0 + timedelta(hours=hour, minutes=5))
    rollups_compute(start=T0, end=T0 + timedelta(hours=3), granularity="hour")
    before = list(UsageRollup.objects.order_by("bucket").values_list("bucket", "requests", "cost"))
    rollups_compute(start=T0, end=T0 + timedelta(hours=3), granularity="hour")
    after = list(UsageRollup.objects.order_by("bucket").values_list("bucket", "requests", "cost"))
    assert before == after and len(after) == 6  # each hour: the customer's row, the total
    rollups_compute(start=T0, end=T0 + timedelta(days=1), granularity="day")
    day = UsageRollup.objects.get(granularity="day", total=False)
    assert (day.bucket, day.requests, day.cost) == (T0.replace(hour=0), 3, Decimal("0.03"))
    from_log = (day.latency_buckets, day.errors_by_type, day.prompt_tokens)
    assert rollup_day_from_hours(T0) == 2  # the same day, summed from its hours
    day = UsageRollup.objects.get(granularity="day", total=False)
    assert (day.requests, day.cost) == (3, Decimal("0.03"))
    assert (day.latency_buckets, day.errors_by_type, day.prompt_tokens) == from_log


def test_the_beat_task_refreshes_the_current_hour_and_day():
    user = user_create(email="now@example.com")
    now = datetime.now(UTC)
    _log(user, now - timedelta(seconds=5))
    assert rollups_refresh(now=now) >= 2
    assert UsageRollup.objects.filter(granularity="hour", user_id=user.pk).exists()
    assert UsageRollup.objects.filter(granularity="day", user_id=user.pk).exists()


def test_totals_sum_every_customer_and_customers_are_counted_apart():
    alice, bob = user_create(email="t-alice@example.com"), user_create(email="t-bob@example.com")
    for user in (alice, bob, bob):
        _log(user, T0 + timedelta(minutes=10))
    rollups_compute(start=T0, end=T0 + timedelta(hours=1), granularity="hour")
    total = UsageRollup.objects.get(granularity="hour", total=True)
    assert (total.requests, total.cost) == (3, Decimal("0.03"))
    assert UsageRollup.objects.filter(granularity="hour", total=False).count() == 2
    window = Window(T0, T0 + timedelta(hours=1), "hour")
    assert users_by(window, "model") == {total.model: 2}
    assert totals(rollups_in(window)).requests == 3  # the totals alone, never twice
