"""Prometheus figures read when scraped (gateway.metrics.scrape_collector_add): the state of
things rather than counts of events.

- `gatewayz_breaker_state{provider,model}`: 0 closed, 1 half-open, 2 open;
- `gatewayz_provider_health_score{provider}`: 0-100, this hour's answers that were not 5xx
  (monitoring.realtime), or the latest check's verdict for a provider without traffic;
- `gatewayz_queue_depth{queue}`: tasks waiting in Celery's queues (a Redis broker);
- `gatewayz_usage_stream_length`, `gatewayz_usage_stream_lag`: settled requests in the usage
  stream, and those its writers have not read yet (the request log's delay);
- `gatewayz_incidents_open{kind}`, `gatewayz_anomaly_zscore{provider,model,metric}`.

Database and Redis reads, at most once per CACHE_SECONDS per process (a scrape storm costs
one read); a figure that cannot be read is left out, never a failed scrape.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from billing.redis_credit import credit_prefixes, usage_stream_key
from core.redis_sync import sync_client
from core.redis_topology import broker_client
from gateway.guards.breaker_staff import breaker_view, breakers_list
from gateway.usage_consumer import GROUP
from monitoring.models import HealthSample, Incident
from monitoring.stats import rollups_in, sums_by, window_last

log = logging.getLogger(__name__)

CACHE_SECONDS = 10.0
BREAKER_STATES = {"closed": 0, "half_open": 1, "open": 2}
CHECK_SCORES = {"operational": 100.0, "degraded": 50.0, "down": 0.0}
ANOMALY_METRICS: dict[str, str] = {
    Incident.Kind.ERROR_ANOMALY: "error_rate",
    Incident.Kind.LATENCY_ANOMALY: "latency_p50_ms",
}


def _breakers() -> list[Metric]:
    gauge = GaugeMetricFamily(
        "gatewayz_breaker_state",
        "Circuit breaker per provider and model: 0 closed, 1 half-open, 2 open",
        labels=("provider", "model"),
    )
    now = time.time()
    for key, breaker in sorted(breakers_list().items()):
        view = breaker_view(key, breaker, now)
        gauge.add_metric((view["provider"], view["model"]), BREAKER_STATES[view["state"]])
    return [gauge]


def _health() -> list[Metric]:
    gauge = GaugeMetricFamily(
        "gatewayz_provider_health_score",
        "0-100: this hour's answers that were not 5xx, else the latest check's verdict",
        labels=("provider",),
    )
    scores: dict[str, float] = {}
    recent = HealthSample.objects.filter(
        model="", checked_at__gte=timezone.now() - timedelta(hours=1)
    ).order_by("-checked_at")
    for provider, status in recent.values_list("provider", "status"):
        scores.setdefault(provider, CHECK_SCORES[status])
    for provider, hour in sums_by(rollups_in(window_last(1)), "provider").items():
        if provider and hour.requests:
            scores[provider] = round(100 * (1 - hour.server_errors / hour.requests), 2)
    for provider, score in sorted(scores.items()):
        gauge.add_metric((provider,), score)
    return [gauge]


def _queues() -> list[Metric]:
    if not settings.REDIS_URL:
        return []
    client: Any = sync_client()  # redis-py's sync client, typed for both of its modes
    found: list[Metric] = []
    broker = _broker(client)
    if broker is not None:
        depth = GaugeMetricFamily(
            "gatewayz_queue_depth", "Celery tasks waiting, per queue", labels=("queue",)
        )
        queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
        depth.add_metric((queue,), float(broker.llen(queue)))
        found.append(depth)
    streams = [usage_stream_key(prefix) for prefix in credit_prefixes()]
    length = float(sum(client.xlen(stream) for stream in streams))
    found.append(
        GaugeMetricFamily(
            "gatewayz_usage_stream_length", "Settled requests in the usage stream", value=length
        )
    )
    lags = [lag for stream in streams if (lag := _stream_lag(client, stream)) is not None]
    if lags:
        lag = sum(lags)
        found.append(
            GaugeMetricFamily(
                "gatewayz_usage_stream_lag",
                "Settled requests the usage writers have not read yet",
                value=lag,
            )
        )
    return found


_brokers: dict[str, Any] = {}


def _broker(client: Any) -> Any:
    """Celery's Redis broker (a list per queue): the gateway's Redis or another database or
    server; None for a broker of another kind, which has its own metrics."""
    url = settings.CELERY_BROKER_URL
    if url == settings.REDIS_URL:
        return client
    if url not in _brokers:
        _brokers[url] = broker_client(url, socket_timeout=2, socket_connect_timeout=2)
    return _brokers[url]


def _stream_lag(client: Any, stream: str) -> float | None:
    for group in client.xinfo_groups(stream):
        name = group.get("name")
        if name in (GROUP, GROUP.encode()):
            lag = group.get("lag")
            return float(lag if lag is not None else group.get("pending", 0))
    return None


def _incidents() -> list[Metric]:
    open_now = GaugeMetricFamily(
        "gatewayz_incidents_open", "Incidents open, by kind", labels=("kind",)
    )
    zscores = GaugeMetricFamily(
        "gatewayz_anomaly_zscore",
        "How unusual a provider × model's figure is this hour (open anomalies only)",
        labels=("provider", "model", "metric"),
    )
    counts = dict.fromkeys(Incident.Kind.values, 0)
    for incident in Incident.objects.filter(closed_at__isnull=True):
        counts[incident.kind] += 1
        metric = ANOMALY_METRICS.get(incident.kind)
        if metric:
            zscores.add_metric((incident.provider, incident.model, metric), incident.peak)
    for kind, count in counts.items():
        open_now.add_metric((kind,), count)
    return [open_now, zscores]


class StateCollector(Collector):
    def __init__(self) -> None:
        self._kept: list[Metric] = []
        self._at = -CACHE_SECONDS

    def collect(self) -> Iterable[Metric]:
        if time.monotonic() - self._at >= CACHE_SECONDS:
            fresh: list[Metric] = []
            for part in (_breakers, _health, _queues, _incidents):
                try:
                    fresh.extend(part())
                except Exception:  # a gap in the figures, not a failed scrape
                    log.warning("reading %s for /metrics failed", part.__name__, exc_info=True)
            self._kept, self._at = fresh, time.monotonic()
        return self._kept
