"""Prometheus metrics of the inference path: one record per request, taken from its
`RequestOutcome` when it is settled, plus the requests in flight.

Labels stay bounded: `model` is the canonical model served (bounded by the catalog; "" when
the request failed before one was chosen, never the name the client sent; a model reached
through a prefix route, whose id is whatever the client asked under the prefix, is
labelled by its prefix, e.g. `mistralai/*`), `provider` a
catalog slug, `status` the HTTP status sent (the gateway's own few, or a provider's 4xx
passed through), an attempt's `outcome` "ok" or one of the gateway's upstream error codes.
Never a key or a user.

Cheap on purpose (docs/request-path.md, "Metrics"): each label set's children are looked up
once and kept in a dict, so a request costs a few dict lookups and `inc()`/`observe()` calls.

Multiprocess mode: when PROMETHEUS_MULTIPROC_DIR is set (it must be before prometheus_client
is first imported), every process writes its values to files there and `metrics_page()`
serves the sum of all of them, so one scrape of any worker sees every worker.
"""

from __future__ import annotations

import atexit
import logging
import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from core import tracing

if TYPE_CHECKING:
    from core.outcome import RequestOutcome

log = logging.getLogger(__name__)
# One line per request (LOG_FORMAT=json makes its fields JSON keys): the access log. Off
# when the level is above INFO, as the benchmark runs.
access = logging.getLogger("gatewayz.access")

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ
# As django-prometheus serves the web side's /metrics.
CONTENT_TYPE = CONTENT_TYPE_LATEST.encode()

# Refusals take milliseconds, streams minutes: the buckets cover both.
DURATION_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)

REQUESTS = Counter(
    "gatewayz_requests",
    "Inference requests answered, by endpoint, model served, provider and HTTP status "
    "(499: the client left before its request was read)",
    ("endpoint", "model", "provider", "status"),
)
REQUEST_DURATION = Histogram(
    "gatewayz_request_duration_seconds",
    "Time from a request's arrival to its last byte sent",
    ("endpoint", "stream"),
    buckets=DURATION_BUCKETS,
)
TIME_TO_FIRST_TOKEN = Histogram(
    "gatewayz_time_to_first_token_seconds",
    "Streams: time from a request's arrival to its first content sent to the client",
    ("provider",),
    buckets=TTFT_BUCKETS,
)
TOKENS = Counter(
    "gatewayz_tokens",
    "Tokens billed, as the providers reported them (cached: prompt tokens read from a cache)",
    ("model", "provider", "kind"),
)
COST = Counter(
    "gatewayz_cost_credits",
    "Credits charged (a float sum for dashboards; the ledger holds the exact amounts)",
    ("model", "provider"),
)
UPSTREAM_ATTEMPTS = Counter(
    "gatewayz_upstream_attempts",
    "Calls to providers, failovers and retries included, by outcome: ok or the error code",
    ("provider", "outcome"),
)
# Credit reserved at admission (the hold) and charged at settlement: their ratio is how much
# of what requests reserve they spend; a hold is released, unspent, when a request ends.
CREDIT_ADMITTED = Counter(
    "gatewayz_credit_admitted_credits", "Credit reserved by admitted requests (their holds)"
)
CREDIT_SETTLED = Counter("gatewayz_credit_settled_credits", "Credit charged for requests")
# livesum: the sum over the processes alive, a dead worker's last value dropped (its file is
# removed at exit below; a killed worker's stays until the directory is emptied on deploy).
REQUESTS_IN_FLIGHT = Gauge(
    "gatewayz_requests_in_flight",
    "Inference requests being served",
    multiprocess_mode="livesum",
)


class _Usage:
    """The token and cost children of one (model, provider): made on its first answered
    request, so that refusals, which have none, add no series of zeros."""

    __slots__ = ("cached_tokens", "completion_tokens", "cost", "prompt_tokens")

    def __init__(self, model: str, provider: str) -> None:
        self.prompt_tokens = TOKENS.labels(model, provider, "prompt")
        self.completion_tokens = TOKENS.labels(model, provider, "completion")
        self.cached_tokens = TOKENS.labels(model, provider, "cached")
        self.cost = COST.labels(model, provider)


# Children by label values: a dict lookup instead of `labels()`' validation and lock.
_requests: dict[tuple[str, str, str, int], Counter] = {}
_usages: dict[tuple[str, str], _Usage] = {}
_durations: dict[tuple[str, bool], Histogram] = {}
_ttfts: dict[str, Histogram] = {}
_attempts: dict[tuple[str, str], Counter] = {}


def _requests_child(endpoint: str, model: str, provider: str, status: int) -> Counter:
    key = (endpoint, model, provider, status)
    child = _requests.get(key)
    if child is None:
        child = _requests[key] = REQUESTS.labels(endpoint, model, provider, str(status))
    return child


def _duration_child(endpoint: str, stream: bool) -> Histogram:
    child = _durations.get((endpoint, stream))
    if child is None:
        child = REQUEST_DURATION.labels(endpoint, "true" if stream else "false")
        _durations[endpoint, stream] = child
    return child


def request_record(outcome: RequestOutcome, model: str) -> None:
    """Counts one request, once its outcome is final (just before it is settled), under
    `model`: the served model's family (CatalogModel.family), "" if none was chosen. Never
    raises: a metric must not cost a request its settlement."""
    try:
        provider = outcome.provider
        _duration_child(outcome.endpoint, outcome.stream).observe(outcome.total_latency_ms / 1000)
        if provider:  # a provider answered: only then can there be tokens, cost, a first token
            usage = _usages.get((model, provider))
            if usage is None:
                usage = _usages[model, provider] = _Usage(model, provider)
            if outcome.prompt_tokens > 0:
                usage.prompt_tokens.inc(outcome.prompt_tokens)
            if outcome.completion_tokens > 0:
                usage.completion_tokens.inc(outcome.completion_tokens)
            if outcome.cached_tokens > 0:
                usage.cached_tokens.inc(outcome.cached_tokens)
            if outcome.cost > 0:
                usage.cost.inc(float(outcome.cost))
                CREDIT_SETTLED.inc(float(outcome.cost))
            if outcome.ttft_ms is not None:
                ttft = _ttfts.get(provider)
                if ttft is None:
                    ttft = _ttfts[provider] = TIME_TO_FIRST_TOKEN.labels(provider)
                ttft.observe(outcome.ttft_ms / 1000)
        for attempt in outcome.attempts:
            key = (attempt["provider"], attempt["error"] or "ok")
            attempts = _attempts.get(key)
            if attempts is None:
                attempts = _attempts[key] = UPSTREAM_ATTEMPTS.labels(*key)
            attempts.inc()
        # Last: a scrape (another thread or process) that sees the request counted sees
        # all of it.
        _requests_child(outcome.endpoint, model, provider, outcome.status).inc()
        if access.isEnabledFor(logging.INFO):
            _access_line(outcome, model)
        if tracing.ON:
            tracing.request_attributes(
                {
                    "gatewayz.request_id": outcome.request_id,
                    "gatewayz.model": model,
                    "gatewayz.provider": outcome.provider,
                    "http.response.status_code": outcome.status,
                    "gatewayz.user_id": outcome.user_id,
                }
            )
    except Exception:
        log.exception("recording the metrics of %s failed", outcome.request_id)


def _access_line(outcome: RequestOutcome, model: str) -> None:
    """The request's line: who (user and key ids, never a key), what (endpoint, model,
    provider), how it went (status, error, latency, first token, tokens, cost)."""
    access.info(
        "%s %s %s %s %d %.0fms",
        outcome.request_id,
        outcome.endpoint,
        model or "-",
        outcome.provider or "-",
        outcome.status,
        outcome.total_latency_ms,
        extra={
            "request_id": outcome.request_id,
            "user_id": outcome.user_id,
            "key_id": outcome.api_key_id,
            "endpoint": outcome.endpoint,
            "model": model,
            "requested_model": outcome.requested_model,
            "provider": outcome.provider,
            "status": outcome.status,
            "error_type": outcome.error_type or None,
            "latency_ms": round(outcome.total_latency_ms, 1),
            "ttft_ms": None if outcome.ttft_ms is None else round(outcome.ttft_ms, 1),
            "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens,
            "cost": str(outcome.cost),
            "stream": outcome.stream,
            "attempts": len(outcome.attempts),
            "trace_id": tracing.trace_id(),
        },
    )


def request_record_unsettled(endpoint: str, status: int, seconds: float) -> None:
    """Counts a request that ended before it had an outcome to settle: a bad key (401), or
    a client that left while its body was being read (499). No model: none was read."""
    try:
        _duration_child(endpoint, False).observe(seconds)
        _requests_child(endpoint, "", "", status).inc()
        if access.isEnabledFor(logging.INFO):
            access.info(
                "- %s - - %d %.0fms",
                endpoint,
                status,
                seconds * 1000,
                extra={"endpoint": endpoint, "status": status, "latency_ms": seconds * 1000},
            )
    except Exception:
        log.exception("recording the metrics of a %s request failed", endpoint)


# Figures read when scraped rather than counted as they happen (breakers, queues, health):
# registered by the apps that know them (monitoring.collectors), so this module, below them,
# needs not import them.
scrape_collectors: list[Collector] = []


def scrape_collector_add(collector: Collector) -> None:
    if collector not in scrape_collectors:
        scrape_collectors.append(collector)


class _Scraped(Collector):
    def collect(self) -> Iterable[Metric]:
        for collector in scrape_collectors:
            try:
                yield from collector.collect()
            except Exception:  # a figure that cannot be read is missing, not a failed scrape
                log.exception("collecting %s failed", type(collector).__name__)


def metrics_page() -> bytes:
    """The scrape page: every process's values in multiprocess mode, else this process's;
    with the figures read at scrape time. Reads files and Redis: call it off the event
    loop."""
    if MULTIPROCESS:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(_Scraped())
        return generate_latest(registry)
    return generate_latest(REGISTRY)


def requests_in_flight() -> int | None:
    """Requests being served by every worker (multiprocess mode, reading their files: call
    it off the event loop), or by this process alone; None if this process serves none."""
    if not MULTIPROCESS:
        value = REQUESTS_IN_FLIGHT._value.get()  # no public reader of one gauge's value
        return int(value)
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    for family in registry.collect():
        if family.name == "gatewayz_requests_in_flight":
            return int(sum(sample.value for sample in family.samples))
    return None


def _forget_live_gauges() -> None:
    # The pid is read at exit, not at import: a worker forked from a parent that imported
    # this module must drop its own files.
    multiprocess.mark_process_dead(os.getpid())


if MULTIPROCESS:
    atexit.register(_forget_live_gauges)
else:
    REGISTRY.register(_Scraped())
