"""Active health checks against the mock providers (each protocol's free probe), run the way
Celery beat runs them (the task, eagerly), and the per-provider health API."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from billing.models import RequestLog
from gateway.guards.breaker_rules import OPEN, Breaker
from monitoring.health import probes
from monitoring.models import HealthSample
from monitoring.tasks import check_health
from providers.models import Provider
from tests.support.staff import breaker_put
from tests.support.waits import settled_count

pytestmark = pytest.mark.smoke


@pytest.fixture
def provider_env(monkeypatch, mock_upstream):
    # The catalog switches a provider on only where its credential is set (as in the
    # gateway processes the tests start).
    monkeypatch.setenv("GATEWAYZ_TEST_UPSTREAM_KEY", mock_upstream.api_key)
    monkeypatch.setenv("GATEWAYZ_TEST_WRONG_KEY", "sk-wrong")


def _latest(provider: str, model: str = "") -> HealthSample:
    return HealthSample.objects.filter(provider=provider, model=model).first()


def test_every_protocol_is_probed_for_free_and_judged(test_catalog, live_db, provider_env):
    counts = check_health.apply(args=("all",)).get()

    assert counts["operational"] > 0 and counts["down"] > 0
    assert _latest("mock").status == "operational"  # GET /models
    assert _latest("mock-anthropic", "test/claude").status == "operational"  # count_tokens
    assert _latest("mock-gemini", "test/gemini").status == "operational"  # countTokens
    assert _latest("mock-vertex", "test/gemini-vertex").status == "operational"
    dead = _latest("dead")
    assert (dead.status, dead.http_status, dead.detail) == ("down", 0, "ConnectError")
    wrong = _latest("wrongkey")
    assert (wrong.status, wrong.http_status) == ("down", 401)
    assert not HealthSample.objects.filter(provider="mock-fal").exists()  # no free probe


def test_the_hot_tier_probes_only_what_served_requests_in_the_last_hour(
    test_catalog, live_db, provider_env, gateway, make_account
):
    account = make_account()
    httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/claude", "messages": [{"role": "user", "content": "hi"}]},
        headers={"authorization": f"Bearer {account.key}"},
    ).raise_for_status()
    settled_count(account.user.pk, 1)  # the hot tier reads the log, written after the answer

    hot = probes("hot")
    everything = {(p.provider, p.model) for p in probes("all")}
    assert ("mock-anthropic", "test/claude") in {(p.provider, p.model) for p in hot}
    assert {(p.provider, p.model) for p in hot} < everything
    recent = timezone.now() - timedelta(hours=1)
    for probe in hot:
        served = RequestLog.objects.filter(provider=probe.provider, created_at__gte=recent)
        assert served.filter(served_model=probe.model).exists() if probe.model else served


def test_the_health_api_shows_each_providers_status_and_uptime(test_catalog, live_db):
    HealthSample.objects.filter(provider__in=("up-co", "flaky-co")).delete()
    for status in ("operational", "operational", "operational", "down"):
        HealthSample.objects.create(provider="flaky-co", status=status)
    HealthSample.objects.create(provider="up-co", status="operational", latency_ms=12.5)

    response = APIClient().get("/api/monitoring/health")

    assert response.status_code == 200  # public: a status page reads it
    shown = {p["provider"]: p for p in response.json()["data"]}
    assert shown["up-co"]["status"] == "operational"
    assert shown["up-co"]["checks"][0]["latency_ms"] == 12.5
    assert shown["flaky-co"]["status"] == "down"  # its latest check
    assert shown["flaky-co"]["uptime_24h"] == 0.75


def test_a_provider_never_checked_is_unknown_and_no_provider_text_is_public(test_catalog, live_db):
    leak = "Rate limit reached for org-Zx81Qa on gpt-internal-7: Limit 500, Used 500"
    Provider.objects.get_or_create(
        slug="never-co", defaults={"name": "Never", "base_url": "https://api.example.com"}
    )
    HealthSample.objects.filter(provider__in=("never-co", "leaky-co")).delete()
    HealthSample.objects.create(provider="leaky-co", status="down", http_status=500, detail=leak)
    breaker = Breaker(
        state=OPEN, consecutive=5, opened_at=time.time(), cooldown=15.0, last_error=leak
    )
    breaker_put("leaky-co|m/one", breaker)
    try:
        response = APIClient().get("/api/monitoring/health")
    finally:
        breaker_put("leaky-co|m/one", None)

    shown = {p["provider"]: p for p in response.json()["data"]}
    # Never checked: no news is not good news.
    assert (shown["never-co"]["status"], shown["never-co"]["checked_at"]) == ("unknown", None)
    # What the provider said stays with staff; the public sees statuses and codes.
    assert shown["leaky-co"]["status"] == "down"
    assert shown["leaky-co"]["checks"][0]["http_status"] == 500
    assert shown["leaky-co"]["breakers"][0]["state"] == "open"
    assert "org-Zx81Qa" not in response.content.decode()
