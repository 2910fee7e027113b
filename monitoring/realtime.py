"""The realtime figures: the last minute and the last five (request rate, error rate,
latency percentiles, tokens per second, cost) from the newest rows of the log (five minutes
of it, by its created_at index; never a scan of the rest), the requests in flight across the
workers, and each provider's health score this hour. What `/api/monitoring/stats/realtime`
answers and the live feed (monitoring.live) pushes every second."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db.models import Count, Q, Sum
from django.utils import timezone

from billing.models import RequestLog
from core.amounts import amount_text
from core.replica import read_alias
from gateway.metrics import requests_in_flight
from monitoring.models import LATENCY_BUCKETS_MS
from monitoring.rollups import percentile
from monitoring.stats import rollups_in, sums_by, window_last


def realtime_stats() -> dict[str, Any]:
    now = timezone.now()
    recent = RequestLog.objects.using(read_alias()).filter(
        created_at__gte=now - timedelta(minutes=5)
    )
    buckets = {
        f"le_{bound}": Count("id", filter=Q(total_latency_ms__lt=bound))
        for bound in LATENCY_BUCKETS_MS
    }
    windows = {}
    for name, minutes in (("1m", 1), ("5m", 5)):
        rows = recent.filter(created_at__gte=now - timedelta(minutes=minutes))
        got = rows.aggregate(
            n=Count("id"),
            failed=Count("id", filter=~Q(status=200)),
            tokens=Sum("prompt_tokens") + Sum("completion_tokens"),
            spent=Sum("cost"),
            **buckets,
        )
        n, seconds = got["n"], minutes * 60
        cumulative = [got[f"le_{b}"] for b in LATENCY_BUCKETS_MS]
        counts = [b - a for a, b in zip([0, *cumulative[:-1]], cumulative, strict=True)]
        counts.append(n - (cumulative[-1] if cumulative else 0))
        windows[name] = {
            "requests": n,
            "requests_per_second": round(n / seconds, 3),
            "error_rate": round(got["failed"] / n, 4) if n else 0.0,
            "latency_p50_ms": percentile(counts, 0.5),
            "latency_p95_ms": percentile(counts, 0.95),
            "tokens_per_second": round((got["tokens"] or 0) / seconds, 2),
            "cost": amount_text(got["spent"] or Decimal(0)),
        }
    hour = sums_by(rollups_in(window_last(1)), "provider")
    scores = {
        p: round(100 * (1 - t.server_errors / t.requests), 2)
        for p, t in sorted(hour.items())
        if p and t.requests
    }
    providers = {
        p: {
            "total_requests": hour[p].requests,
            "total_cost": amount_text(hour[p].cost),
            "health_score": score,
        }
        for p, score in scores.items()
    }
    return {
        "timestamp": now.isoformat(),
        "windows": windows,
        "in_flight": requests_in_flight(),
        "providers": providers,
        "total_requests": sum(t.requests for t in hour.values()),
        "total_cost": amount_text(sum((t.cost for t in hour.values()), Decimal(0))),
        "avg_health_score": round(sum(scores.values()) / len(scores), 2) if scores else 0.0,
    }
