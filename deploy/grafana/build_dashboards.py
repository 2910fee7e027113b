"""Writes the Grafana dashboards (deploy/grafana/dashboards/*.json) from the panels below:
`python deploy/grafana/build_dashboards.py`. The JSON is what Grafana provisions
(docker-compose's `grafana` service); this is what a person edits. A test
(tests/monitoring/test_grafana.py) checks that the files are this script's output, that
every query names only metrics the gateway exports, and that every SQL query runs.

Prometheus panels use the `prometheus` datasource, business panels the `postgres` one
(the rollups: monitoring_usagerollup)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
PROM = {"type": "prometheus", "uid": "prometheus"}
PG = {"type": "grafana-postgresql-datasource", "uid": "postgres"}
Panel = dict[str, Any]


def chart(
    title: str, *exprs: tuple[str, str], unit: str = "short", kind: str = "timeseries"
) -> Panel:
    """A Prometheus panel: (PromQL, legend) pairs."""
    return {
        "type": kind,
        "title": title,
        "datasource": PROM,
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [
            {"refId": chr(65 + i), "datasource": PROM, "expr": expr, "legendFormat": legend}
            for i, (expr, legend) in enumerate(exprs)
        ],
    }


def stat(title: str, expr: str, unit: str = "short") -> Panel:
    return chart(title, (expr, title), unit=unit, kind="stat")


def table(title: str, sql: str, kind: str = "table") -> Panel:
    """A Postgres panel over the rollups; `$__timeFilter(bucket)` is Grafana's window."""
    return {
        "type": kind,
        "title": title,
        "datasource": PG,
        "targets": [
            {"refId": "A", "datasource": PG, "rawQuery": True, "format": "table", "rawSql": sql}
        ],
    }


def dashboard(uid: str, title: str, panels: list[Panel], tags: list[str]) -> dict[str, Any]:
    laid, x, y = [], 0, 0
    for i, panel in enumerate(panels):  # two to a row; a table takes a row of its own
        width = 24 if panel["type"] == "table" else 12
        if x + width > 24:
            x, y = 0, y + 8
        laid.append({**panel, "id": i + 1, "gridPos": {"h": 8, "w": width, "x": x, "y": y}})
        x += width
    return {
        "uid": uid,
        "title": title,
        "tags": ["gatewayz", *tags],
        "timezone": "utc",
        "schemaVersion": 39,
        "version": 1,
        "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "panels": laid,
    }


RATE = "sum(rate(gatewayz_requests_total[5m]))"
ERRORS = 'sum(rate(gatewayz_requests_total{status=~"5.."}[5m])) / clamp_min(' + RATE + ", 1e-9)"
P = "histogram_quantile({q}, sum(rate(gatewayz_request_duration_seconds_bucket[5m])) by (le{by}))"
TTFT = (
    "histogram_quantile({q}, "
    "sum(rate(gatewayz_time_to_first_token_seconds_bucket[5m])) by (le{by}))"
)

DASHBOARDS = [
    dashboard(
        "gatewayz-executive",
        "Gatewayz: executive overview",
        [
            stat("Requests per second", RATE, "reqps"),
            stat("5xx share", ERRORS, "percentunit"),
            stat("Median latency", P.format(q=0.5, by=""), "s"),
            stat(
                "Credit settled per hour",
                "sum(increase(gatewayz_credit_settled_credits_total[1h]))",
            ),
            stat("Open incidents", "sum(gatewayz_incidents_open)"),
            stat("Workers on the Redis fallback", "sum(gatewayz_redis_fallback_active)"),
            chart(
                "Requests by status",
                ("sum(rate(gatewayz_requests_total[5m])) by (status)", "{{status}}"),
                unit="reqps",
            ),
            chart("In flight", ("sum(gatewayz_requests_in_flight)", "in flight")),
        ],
        ["overview"],
    ),
    dashboard(
        "gatewayz-models",
        "Gatewayz: model performance",
        [
            chart(
                "Requests by model",
                ("sum(rate(gatewayz_requests_total[5m])) by (model)", "{{model}}"),
                unit="reqps",
            ),
            chart(
                "5xx share by model",
                (
                    'sum(rate(gatewayz_requests_total{status=~"5.."}[5m])) by (model)'
                    " / clamp_min(sum(rate(gatewayz_requests_total[5m])) by (model), 1e-9)",
                    "{{model}}",
                ),
                unit="percentunit",
            ),
            chart(
                "p95 time to first token by provider",
                (TTFT.format(q=0.95, by=", provider"), "{{provider}}"),
                unit="s",
            ),
            chart(
                "Tokens by model",
                ("sum(rate(gatewayz_tokens_total[5m])) by (model, kind)", "{{model}} {{kind}}"),
            ),
            chart(
                "Anomalies (z-score)",
                (
                    "max(gatewayz_anomaly_zscore) by (provider, model, metric)",
                    "{{provider}} {{model}} {{metric}}",
                ),
            ),
            chart(
                "Latency p50 / p95 / p99",
                (P.format(q=0.5, by=""), "p50"),
                (P.format(q=0.95, by=""), "p95"),
                (P.format(q=0.99, by=""), "p99"),
                unit="s",
            ),
        ],
        ["models"],
    ),
    dashboard(
        "gatewayz-providers",
        "Gatewayz: provider comparison",
        [
            chart(
                "Health score",
                ("min(gatewayz_provider_health_score) by (provider)", "{{provider}}"),
                unit="percent",
            ),
            chart(
                "Upstream attempts by outcome",
                (
                    "sum(rate(gatewayz_upstream_attempts_total[5m])) by (provider, outcome)",
                    "{{provider}} {{outcome}}",
                ),
                unit="reqps",
            ),
            chart(
                "Breakers not closed",
                ("max(gatewayz_breaker_state) by (provider, model) > 0", "{{provider}} {{model}}"),
            ),
            chart(
                "Requests by provider",
                ("sum(rate(gatewayz_requests_total[5m])) by (provider)", "{{provider}}"),
                unit="reqps",
            ),
            chart(
                "Cost by provider (credits/s)",
                ("sum(rate(gatewayz_cost_credits_total[5m])) by (provider)", "{{provider}}"),
            ),
            chart(
                "Failovers: attempts per request",
                (
                    "sum(rate(gatewayz_upstream_attempts_total[5m])) / clamp_min("
                    + RATE
                    + ", 1e-9)",
                    "attempts per request",
                ),
            ),
        ],
        ["providers"],
    ),
    dashboard(
        "gatewayz-business",
        "Gatewayz: business and revenue",
        [
            chart(
                "Credit admitted and settled (per hour)",
                ("sum(increase(gatewayz_credit_admitted_credits_total[1h]))", "held"),
                ("sum(increase(gatewayz_credit_settled_credits_total[1h]))", "charged"),
            ),
            chart(
                "Cost by model (credits/s)",
                ("sum(rate(gatewayz_cost_credits_total[5m])) by (model)", "{{model}}"),
            ),
            table(
                "Revenue, provider cost and margin by day",
                "SELECT bucket AS time, sum(cost) AS revenue, sum(provider_cost) AS provider_cost, "
                "sum(cost) - sum(provider_cost) AS margin FROM monitoring_usagerollup "
                "WHERE granularity = 'day' AND $__timeFilter(bucket) "
                "GROUP BY bucket ORDER BY bucket",
                kind="timeseries",
            ),
            table(
                "Margin by model",
                "SELECT model, sum(requests) AS requests, sum(cost) AS revenue, "
                "sum(provider_cost) AS provider_cost, sum(cost) - sum(provider_cost) AS margin "
                "FROM monitoring_usagerollup WHERE granularity = 'hour' AND $__timeFilter(bucket) "
                "GROUP BY model ORDER BY revenue DESC LIMIT 50",
            ),
            table(
                "Top customers",
                "SELECT user_id, sum(requests) AS requests, sum(cost) AS spent "
                "FROM monitoring_usagerollup WHERE granularity = 'hour' AND $__timeFilter(bucket) "
                "AND user_id IS NOT NULL GROUP BY user_id ORDER BY spent DESC LIMIT 25",
            ),
        ],
        ["business"],
    ),
    dashboard(
        "gatewayz-incidents",
        "Gatewayz: incident response",
        [
            stat("Open incidents", "sum(gatewayz_incidents_open)"),
            stat("Breakers open", "count(gatewayz_breaker_state == 2) or vector(0)"),
            chart("5xx share", (ERRORS, "5xx")),
            chart(
                "Upstream failures by code",
                (
                    'sum(rate(gatewayz_upstream_attempts_total{outcome!="ok"}[5m]))'
                    " by (provider, outcome)",
                    "{{provider}} {{outcome}}",
                ),
                unit="reqps",
            ),
            chart(
                "Redis outages and fallback",
                ("sum(increase(gatewayz_redis_outages_total[5m]))", "outages"),
                ("sum(gatewayz_redis_fallback_active)", "workers on fallback"),
            ),
            chart(
                "Usage stream lag and queue depth",
                ("max(gatewayz_usage_stream_lag)", "usage stream lag"),
                ("max(gatewayz_queue_depth) by (queue)", "queue {{queue}}"),
            ),
            table(
                "Incidents",
                "SELECT opened_at AS time, provider, model, kind, peak, detail, closed_at, note "
                "FROM monitoring_incident WHERE $__timeFilter(opened_at) "
                "ORDER BY opened_at DESC LIMIT 100",
            ),
        ],
        ["incidents"],
    ),
    dashboard(
        "gatewayz-tokens",
        "Gatewayz: tokens and throughput",
        [
            chart(
                "Tokens per second by kind",
                ("sum(rate(gatewayz_tokens_total[5m])) by (kind)", "{{kind}}"),
            ),
            chart(
                "Requests per second by endpoint",
                ("sum(rate(gatewayz_requests_total[5m])) by (endpoint)", "{{endpoint}}"),
                unit="reqps",
            ),
            chart("Streams: p50 time to first token", (TTFT.format(q=0.5, by=""), "p50"), unit="s"),
            chart(
                "Duration p95, streamed or not",
                (P.format(q=0.95, by=", stream"), "stream={{stream}}"),
                unit="s",
            ),
            chart(
                "Cached share of input tokens",
                (
                    'sum(rate(gatewayz_tokens_total{kind="cached"}[1h])) / clamp_min('
                    'sum(rate(gatewayz_tokens_total{kind="prompt"}[1h])), 1e-9)',
                    "cached",
                ),
                unit="percentunit",
            ),
            chart("Usage stream length", ("max(gatewayz_usage_stream_length)", "entries")),
        ],
        ["throughput"],
    ),
]


def rendered() -> dict[str, str]:
    return {
        f"{board['uid'].removeprefix('gatewayz-')}.json": json.dumps(board, indent=2) + "\n"
        for board in DASHBOARDS
    }


if __name__ == "__main__":
    for name, text in rendered().items():
        (HERE / "dashboards" / name).write_text(text)
        print("wrote", name)
