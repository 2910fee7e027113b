"""Uptime timelines (`/health/providers/uptime`, `/health/models/uptime`): per provider, or
per model at a provider, a sample per hour (periods up to a week) or per day (30 and 90
days), from both the active checks (monitoring.models.HealthSample) and passive traffic
(the rollups' 5xx answers), with the incidents each bucket overlaps.

A bucket's success rate is the lower of its checks' (those answered) and its traffic's
(answers that were not 5xx); at least SUCCESS_OPERATIONAL is operational, at least
SUCCESS_DEGRADED degraded, below it downtime. A bucket with neither checks nor traffic has
no sample: no news is not good news, and not bad news either. `uptime_percentage` is the
mean of the samples' success rates, as a status page counts time rather than requests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db.models import Count, Max, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from core.replica import read_alias
from monitoring.models import HealthSample, Incident, UsageRollup
from monitoring.params import choice, integer
from monitoring.rollups import bucket_start
from monitoring.stats import Window
from providers.catalog import Catalog

Params = Mapping[str, str]

PERIODS = {
    "24h": (timedelta(hours=24), "hour", "Last 24 hours"),
    "72h": (timedelta(hours=72), "hour", "Last 72 hours"),
    "7d": (timedelta(days=7), "hour", "Last 7 days"),
    "30d": (timedelta(days=30), "day", "Last 30 days"),
    "90d": (timedelta(days=90), "day", "Last 90 days"),
}
SUCCESS_OPERATIONAL = 0.95
SUCCESS_DEGRADED = 0.50
TRUNC = {"hour": TruncHour, "day": TruncDay}


@dataclass(slots=True)
class Bucket:
    checks: int = 0
    checks_ok: int = 0
    requests: int = 0
    failures: int = 0

    def success_rate(self) -> float | None:
        rates = []
        if self.checks:
            rates.append(self.checks_ok / self.checks)
        if self.requests:
            rates.append(1 - self.failures / self.requests)
        return min(rates) if rates else None


@dataclass(slots=True)
class Timeline:
    provider: str
    model: str
    buckets: dict[datetime, Bucket] = field(default_factory=dict)
    last_checked: datetime | None = None

    def at(self, moment: datetime) -> Bucket:
        return self.buckets.setdefault(moment, Bucket())


def _status(rate: float) -> str:
    if rate >= SUCCESS_OPERATIONAL:
        return "operational"
    return "degraded" if rate >= SUCCESS_DEGRADED else "downtime"


def _window(params: Params) -> tuple[str, Window]:
    period = choice(params, "period", tuple(PERIODS), "24h")
    span, granularity, _ = PERIODS[period]
    now = timezone.now()
    start = bucket_start(now - span, granularity) + (
        timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    )
    return period, Window(start, now, granularity)


def _fill(timelines: dict[tuple[str, str], Timeline], window: Window, per_model: bool) -> None:
    """Checks and traffic into the timelines (keyed by provider and model, "" for the
    provider as a whole)."""
    checks = HealthSample.objects.using(read_alias()).filter(
        checked_at__gte=window.start, checked_at__lt=window.end
    )
    checks = checks.exclude(model="") if per_model else checks.filter(model="")
    grouped = (
        checks.annotate(at=TRUNC[window.granularity]("checked_at"))
        .values("provider", "model", "at")
        .annotate(n=Count("id"), ok=Count("id", filter=~Q(status="down")), last=Max("checked_at"))
    )
    for row in grouped:
        line = timelines.get((row["provider"], row["model"]))
        if line is None:
            continue
        bucket = line.at(row["at"])
        bucket.checks += row["n"]
        bucket.checks_ok += row["ok"]
        if line.last_checked is None or row["last"] > line.last_checked:
            line.last_checked = row["last"]
    traffic = (
        UsageRollup.objects.using(read_alias())
        .filter(
            total=True,
            granularity=window.granularity,
            bucket__gte=window.start,
            bucket__lt=window.end,
        )
        .exclude(provider="")
    )
    fields = ("provider", "model", "bucket") if per_model else ("provider", "bucket")
    for row in traffic.values(*fields).annotate(n=Sum("requests"), failing=Sum("server_errors")):
        line = timelines.get((row["provider"], row.get("model", "")))
        if line is None:
            continue
        bucket = line.at(row["bucket"])
        bucket.requests += row["n"]
        bucket.failures += row["failing"]


def _incidents(window: Window) -> list[Incident]:
    return list(
        Incident.objects.using(read_alias())
        .filter(opened_at__lt=window.end)
        .filter(Q(closed_at__isnull=True) | Q(closed_at__gt=window.start))
    )


def _view(line: Timeline, window: Window, label: str, incidents: list[Incident]) -> dict[str, Any]:
    mine = [i for i in incidents if i.provider == line.provider and i.model in ("", line.model)]
    samples, rates = [], []
    worst = "operational"
    for at in sorted(line.buckets):
        rate = line.buckets[at].success_rate()
        if rate is None:
            continue
        status = _status(rate)
        if status == "downtime" or (status == "degraded" and worst == "operational"):
            worst = status
        end = at + window.step
        overlapping = [i for i in mine if i.opened_at < end and (i.closed_at or end) > at]
        samples.append(
            {
                "timestamp": at,
                "status": status,
                "success_rate": round(rate, 4),
                "duration_minutes": int(window.step.total_seconds() // 60),
                "incident": _incident_mark(overlapping, rate),
            }
        )
        rates.append(rate)
    closed = [i.minutes for i in mine if i.minutes is not None]
    return {
        "provider": line.provider,
        "uptime_percentage": round(100 * sum(rates) / len(rates), 3) if rates else None,
        "period_label": label,
        "last_checked": line.last_checked,
        "samples": samples,
        "incident_summary": {
            "total_incidents": len(mine),
            "open_incidents": sum(1 for i in mine if i.closed_at is None),
            "mttr_minutes": round(sum(closed) / len(closed), 2) if closed else None,
            "worst_status": worst if samples else None,
        },
    }


def _incident_mark(overlapping: list[Incident], rate: float) -> dict[str, Any] | None:
    if not overlapping:
        return None
    worst = max(overlapping, key=lambda i: (i.kind == Incident.Kind.DOWNTIME, i.peak))
    return {
        "id": worst.pk,
        "type": worst.kind,
        "detail": worst.detail,
        "error_rate": round(100 * (1 - rate), 2),
    }


def providers_uptime(params: Params, catalog: Catalog) -> dict[str, Any]:
    period, window = _window(params)
    only = params.get("provider") or None
    providers = {d.provider for m in catalog.models.values() for d in m.deployments}
    timelines = {(p, ""): Timeline(p, "") for p in sorted(providers) if only is None or p == only}
    _fill(timelines, window, per_model=False)
    incidents = _incidents(window)
    label = PERIODS[period][2]
    views = [_view(line, window, label, incidents) for line in timelines.values()]
    views.sort(key=lambda v: (v["uptime_percentage"] is None, v["uptime_percentage"] or 0))
    return {"success": True, "period": period, "providers": views}


def models_uptime(params: Params, catalog: Catalog) -> dict[str, Any]:
    period, window = _window(params)
    limit = integer(params, "limit", 10, 1, 100)
    only_provider, only_model = params.get("provider") or None, params.get("model") or None
    timelines = {
        (d.provider, m.id): Timeline(d.provider, m.id)
        for m in catalog.models.values()
        for d in m.deployments
        if (only_model is None or m.id == only_model)
        and (only_provider is None or d.provider == only_provider)
    }
    _fill(timelines, window, per_model=True)
    incidents = _incidents(window)
    label = PERIODS[period][2]
    views = [
        {"model": line.model, **_view(line, window, label, incidents)}
        for line in timelines.values()
        if line.buckets
    ]
    views.sort(key=lambda v: (v["uptime_percentage"] is None, v["uptime_percentage"] or 0))
    return {"success": True, "period": period, "models": views[:limit]}
