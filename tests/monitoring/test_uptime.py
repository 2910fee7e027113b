"""Uptime timelines (monitoring.uptime) from checks and traffic, and incidents opened and
closed by themselves (monitoring.incidents)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from monitoring import uptime
from monitoring.incidents import incidents_evaluate
from monitoring.models import HealthSample, Incident
from monitoring.params import ParamRefused
from monitoring.rollups import bucket_start
from tests.support.request_logs import request_logged, rolled_up

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.smoke,
    pytest.mark.usefixtures("only_this_tests_rows"),
]


def _check(provider: str, status: str, at, model: str = "") -> None:
    HealthSample.objects.create(
        provider=provider,
        model=model,
        status=status,
        http_status=200 if status != "down" else 503,
        checked_at=at,
    )


def test_buckets_from_checks_and_traffic(catalog):
    hour = bucket_start(timezone.now(), "hour")
    two_ago, one_ago = hour - timedelta(hours=2), hour - timedelta(hours=1)
    for minute in (5, 35):  # two hours ago: checks fine
        _check("mock", "operational", two_ago + timedelta(minutes=minute))
    _check("mock", "operational", one_ago + timedelta(minutes=5))  # an hour ago: checks fine,
    for status in (200, 200, 502, 503):  # ... but half the traffic failed: degraded
        request_logged(model="test/echo", provider="mock", status=status, at=one_ago)
    request_logged(model="test/echo", provider="mock", status=400, at=hour)  # the client's
    rolled_up(days=1)
    body = uptime.providers_uptime({"provider": "mock"}, catalog)
    [mock] = body["providers"]
    assert [(s["timestamp"], s["status"]) for s in mock["samples"]] == [
        (two_ago, "operational"),
        (one_ago, "degraded"),
        (hour, "operational"),  # a 4xx is the client's mistake, not downtime
    ]
    assert mock["uptime_percentage"] == pytest.approx(100 * (1 + 0.5 + 1) / 3, abs=0.001)
    assert mock["period_label"] == "Last 24 hours"
    assert mock["last_checked"] == one_ago + timedelta(minutes=5)
    assert mock["incident_summary"]["worst_status"] == "degraded"
    assert all(s["duration_minutes"] == 60 for s in mock["samples"])


def test_days_for_long_periods_and_models(catalog):
    _check("mock-anthropic", "down", timezone.now() - timedelta(days=3), model="test/claude")
    _check("mock-anthropic", "down", timezone.now() - timedelta(minutes=3), model="test/claude")
    body = uptime.models_uptime({"period": "30d", "model": "test/claude"}, catalog)
    [claude] = body["models"]
    assert (claude["model"], claude["provider"]) == ("test/claude", "mock-anthropic")
    assert [s["status"] for s in claude["samples"]] == ["downtime", "downtime"]
    assert {s["duration_minutes"] for s in claude["samples"]} == {24 * 60}
    assert claude["uptime_percentage"] == 0
    with pytest.raises(ParamRefused):
        uptime.models_uptime({"period": "1y"}, catalog)


def test_error_surge_opens_and_closes_with_hysteresis(catalog):
    now = timezone.now() - timedelta(minutes=20)
    for status in (502, 502, 200, 200, 200):  # 40% failing
        request_logged(model="test/echo", provider="mock", status=status, at=now)
    incidents_evaluate(now=now + timedelta(seconds=1))
    incidents_evaluate(now=now + timedelta(seconds=2))  # still open: the same incident
    [surge] = Incident.objects.filter(provider="mock")
    assert (surge.kind, surge.closed_at, surge.peak) == ("error_surge", None, 0.4)
    later = now + timedelta(minutes=6)  # 1 in 6 failing: under the opening, over the closing
    for status in (502, 200, 200, 200, 200, 200):
        request_logged(model="test/echo", provider="mock", status=status, at=later)
    incidents_evaluate(now=later + timedelta(seconds=1))
    surge.refresh_from_db()
    assert surge.closed_at is None
    calm = later + timedelta(minutes=6)
    for _ in range(10):
        request_logged(model="test/echo", provider="mock", at=calm)
    incidents_evaluate(now=calm + timedelta(seconds=1))
    surge.refresh_from_db()
    assert surge.closed_at == calm + timedelta(seconds=1)
    # The timeline marks the buckets it overlapped.
    rolled_up(days=1)
    samples = uptime.providers_uptime({"provider": "mock"}, catalog)["providers"][0]["samples"]
    marked = [s["incident"] for s in samples if s["incident"]]
    assert marked and marked[0]["type"] == "error_surge" and marked[0]["id"] == surge.pk


def test_downtime_from_failed_checks(catalog):
    now = timezone.now()
    _check("dead", "down", now - timedelta(minutes=2))
    incidents_evaluate(now=now)
    assert not Incident.objects.filter(provider="dead").exists()  # one failure is not down
    _check("dead", "down", now - timedelta(minutes=1))
    incidents_evaluate(now=now)
    [down] = Incident.objects.filter(provider="dead", kind="downtime")
    assert "503, 503" in down.detail
    _check("dead", "operational", now)
    incidents_evaluate(now=now + timedelta(seconds=1))
    down.refresh_from_db()
    assert down.closed_at is not None and down.minutes == pytest.approx(1 / 60)


def test_a_few_failures_open_nothing(catalog):
    now = timezone.now()
    for _ in range(4):  # under MIN_REQUESTS: too few to say
        request_logged(model="test/echo", provider="mock", status=502, at=now)
    incidents_evaluate(now=now + timedelta(seconds=1))
    assert not Incident.objects.exists()


def test_the_status_banner_says_the_worst_the_page_shows(catalog, client):
    """A provider whose bar shows downtime before any incident is opened: the banner must
    not say all is well under it."""
    from django.core.cache import cache

    _check("mock", "down", timezone.now() - timedelta(minutes=1))
    cache.delete("pages:status:board")
    page = client.get("/status").content.decode()
    assert not Incident.objects.filter(closed_at__isnull=True).exists()
    assert "All systems operational" not in page
    assert "A provider is down" in page
