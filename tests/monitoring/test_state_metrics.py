"""Figures /metrics reads at scrape time (monitoring.collectors): breakers, provider health,
the usage stream and the queue, incidents and anomalies; and the credit counters."""

from __future__ import annotations

import time
import uuid

import httpx
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.guards.breaker_rules import OPEN, Breaker
from monitoring.models import HealthSample, Incident
from tests.support.staff import breaker_put

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def _scrape(gateway: str) -> Samples:
    text = httpx.get(f"{gateway}/metrics", timeout=10).text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _eventually(gateway: str, name: str, labels: dict[str, str], value: float) -> Samples:
    """The collector keeps its figures 10 s: wait, boundedly, for a fresh reading."""
    deadline = time.monotonic() + 15
    key = (name, frozenset(labels.items()))
    while True:
        samples = _scrape(gateway)
        if samples.get(key) == value:
            return samples
        if time.monotonic() > deadline:
            raise AssertionError(f"{name}{labels} never read {value}: {samples.get(key)}")
        time.sleep(0.5)


@pytest.fixture
def troubled_provider(live_db):
    slug = f"metrics-{uuid.uuid4().hex[:6]}"
    breaker_put(f"{slug}|m/one", Breaker(state=OPEN, consecutive=5, opened_at=time.time()))
    HealthSample.objects.create(provider=slug, status="degraded")
    incident = Incident.objects.create(
        provider=slug, model="m/one", kind=Incident.Kind.LATENCY_ANOMALY, peak=4.5
    )
    yield slug
    breaker_put(f"{slug}|m/one", None)
    HealthSample.objects.filter(provider=slug).delete()
    incident.delete()


def test_state_is_read_when_scraped(gateway, troubled_provider):
    slug = troubled_provider
    samples = _eventually(
        gateway, "gatewayz_breaker_state", {"provider": slug, "model": "m/one"}, 2
    )
    assert samples[("gatewayz_provider_health_score", frozenset({("provider", slug)}))] == 50
    zscore = {"provider": slug, "model": "m/one", "metric": "latency_p50_ms"}
    assert samples[("gatewayz_anomaly_zscore", frozenset(zscore.items()))] == 4.5
    assert samples[("gatewayz_incidents_open", frozenset({("kind", "latency_anomaly")}))] >= 1
    assert ("gatewayz_usage_stream_length", frozenset()) in samples
    assert ("gatewayz_usage_stream_lag", frozenset()) in samples
    assert ("gatewayz_redis_fallback_active", frozenset()) in samples


def test_credit_admitted_and_settled(own_gateway, make_account):
    gateway = own_gateway()  # its own: no other test's request settles meanwhile
    account = make_account()
    before = _scrape(gateway)
    answer = openai.OpenAI(
        base_url=f"{gateway}/v1", api_key=account.key, max_retries=0
    ).chat.completions.with_raw_response.create(
        model="test/echo", messages=[{"role": "user", "content": "hi"}]
    )
    cost = float(answer.headers["x-gatewayz-cost"])
    deadline = time.monotonic() + 10
    while True:
        after = _scrape(gateway)
        settled = after.get(("gatewayz_credit_settled_credits_total", frozenset()), 0) - before.get(
            ("gatewayz_credit_settled_credits_total", frozenset()), 0
        )
        if settled >= cost or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    admitted = after[("gatewayz_credit_admitted_credits_total", frozenset())] - before.get(
        ("gatewayz_credit_admitted_credits_total", frozenset()), 0
    )
    assert settled == pytest.approx(cost)
    assert admitted >= settled > 0  # the hold covered the charge
