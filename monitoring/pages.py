"""The pages monitoring owns: a customer's dashboard (their balance, usage from the
rollups, latest requests) and the public status page (uptime bars, incidents)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone

from accounts.authentication import request_user
from accounts.models import ApiKey
from billing.models import RequestLog
from billing.selectors import balance_of
from core.amounts import amount_text
from core.replica import read_alias
from core.web import cached
from monitoring.models import Incident
from monitoring.rollups import bucket_start
from monitoring.uptime import providers_uptime
from monitoring.usage_api import usage_sums
from providers.catalog import catalog_recent
from providers.models import Provider

# The dashboard's windows: its span and the rollups it reads.
RANGES = {
    "24h": (timedelta(hours=24), "hour", "Last 24 hours"),
    "7d": (timedelta(days=7), "day", "Last 7 days"),
    "30d": (timedelta(days=30), "day", "Last 30 days"),
}
RECENT_REQUESTS = 10
STATUS_DAYS = 90


def _series(
    rows: list[dict[str, Any]], start: datetime, end: datetime, granularity: str
) -> list[dict[str, Any]]:
    """One point per bucket of the window, zero where nothing was used (a chart's gaps are
    days without traffic, not missing days)."""
    step = timedelta(hours=1) if granularity == "hour" else timedelta(days=1)
    by_bucket = {row["bucket"]: row for row in rows}
    points = []
    at = bucket_start(start, granularity)
    while at < end:
        row = by_bucket.get(at, {})
        points.append(
            {
                "bucket": at,
                "requests": row.get("n") or 0,
                "tokens": (row.get("prompt") or 0) + (row.get("completion") or 0),
                "cost": row.get("spent") or Decimal(0),
            }
        )
        at += step
    return points


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "requests": sum(r["n"] or 0 for r in rows),
        "errors": sum(r["failed"] or 0 for r in rows),
        "tokens": sum((r["prompt"] or 0) + (r["completion"] or 0) for r in rows),
        "cost": sum((r["spent"] or Decimal(0) for r in rows), Decimal(0)),
    }


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    user = request_user(request)
    span = request.GET.get("range", "7d")
    if span not in RANGES:
        span = "7d"
    length, granularity, label = RANGES[span]
    end = timezone.now()
    start = end - length
    if granularity == "day":  # whole days: "7 days" is today and the six before it
        start = bucket_start(end, "day") - length + timedelta(days=1)

    def sums(group: str | None, by_bucket: bool = False) -> list[dict[str, Any]]:
        return usage_sums(
            user_id=user.pk,
            start=start,
            end=end,
            granularity=granularity,
            group=group,
            by_bucket=by_bucket,
        )

    per_bucket = sums(None, by_bucket=True)
    per_model = sums("model")
    per_key = sums("key")
    names = dict(
        ApiKey.objects.filter(user=user, pk__in=[r["api_key_id"] for r in per_key]).values_list(
            "pk", "name"
        )
    )
    for row in per_key:
        row["name"] = names.get(row["api_key_id"], "(deleted key)")
    shown = balance_of(user=user)
    recent = list(
        RequestLog.objects.using(read_alias())
        .filter(user=user)
        .order_by("-created_at")
        .values(
            "created_at",
            "served_model",
            "requested_model",
            "status",
            "prompt_tokens",
            "completion_tokens",
            "cost",
            "total_latency_ms",
            "stream",
        )[:RECENT_REQUESTS]
    )
    series = _series(per_bucket, start, end, granularity)
    label_format = "%b %d %H:00" if granularity == "hour" else "%b %d"
    chart = {
        "labels": [p["bucket"].strftime(label_format) for p in series],
        "requests": [p["requests"] for p in series],
        "cost": [amount_text(p["cost"]) for p in series],  # exact; Chart.js reads numbers
    }
    context = {
        "span": span,
        "span_label": label,
        "ranges": RANGES,
        "granularity": granularity,
        "balance": shown,
        "low_balance": shown.available < settings.GATEWAYZ_LOW_BALANCE_BANNER,
        "series": series,
        "chart_data": chart,
        "totals": _totals(per_bucket),
        "per_model": sorted(per_model, key=lambda r: (-(r["spent"] or 0), r["model"])),
        "per_key": sorted(per_key, key=lambda r: -(r["spent"] or 0)),
        "recent": recent,
    }
    return render(request, "monitoring/dashboard.html", context)


def _days(samples: list[dict[str, Any]], today: date) -> list[dict[str, Any]]:
    """STATUS_DAYS cells, oldest first: each day's status and success rate, or none."""
    by_day = {s["timestamp"].date(): s for s in samples}
    cells = []
    for back in range(STATUS_DAYS - 1, -1, -1):
        day = today - timedelta(days=back)
        sample = by_day.get(day)
        cells.append(
            {
                "day": day,
                "status": sample["status"] if sample else "none",
                "rate": sample["success_rate"] if sample else None,
                "percent": round(100 * sample["success_rate"], 2) if sample else None,
                "incident": bool(sample and sample["incident"]),
                "older": back >= 30,  # hidden on a phone: the last 30 days fit
            }
        )
    return cells


def _status_board() -> dict[str, Any]:
    uptime = providers_uptime({"period": "90d"}, catalog_recent())
    names = dict(Provider.objects.values_list("slug", "name"))
    today = timezone.now().date()
    rows = []
    for line in sorted(uptime["providers"], key=lambda v: v["provider"]):
        cells = _days(line["samples"], today)
        latest = next((c["status"] for c in reversed(cells) if c["status"] != "none"), "none")
        rows.append(
            {
                "provider": line["provider"],
                "name": names.get(line["provider"], line["provider"]),
                "uptime": line["uptime_percentage"],
                "current": latest,
                "cells": cells,
            }
        )
    return {"rows": rows, "computed_at": timezone.now()}


def status(request: HttpRequest) -> HttpResponse:
    board = cached("pages:status:board", 60, _status_board)
    open_incidents = list(Incident.objects.filter(closed_at__isnull=True).order_by("-opened_at"))
    recent = list(
        Incident.objects.filter(
            closed_at__isnull=False, closed_at__gte=timezone.now() - timedelta(days=7)
        ).order_by("-opened_at")[:20]
    )
    # The banner says the worst of what the page shows: an open incident or a provider's
    # latest bar (downtime can show before an incident is opened, or after it closed).
    shown = {row["current"] for row in board["rows"]}
    shown.update(
        "downtime" if i.kind == Incident.Kind.DOWNTIME else "degraded" for i in open_incidents
    )
    worst = next((s for s in ("downtime", "degraded") if s in shown), "operational")
    context = {**board, "open_incidents": open_incidents, "recent": recent, "overall": worst}
    return render(request, "monitoring/status.html", context)


KEY_USAGE_DAYS = 30


@login_required
def key_usage(request: HttpRequest) -> HttpResponse:
    """The caller's usage per key over the last KEY_USAGE_DAYS days, as a table fragment
    (the keys pages load it with htmx); `key`: one key's only."""
    end = timezone.now()
    rows = usage_sums(
        user_id=request_user(request).pk,
        start=end - timedelta(days=KEY_USAGE_DAYS),
        end=end,
        granularity="day",
        group="key",
        by_bucket=False,
    )
    only = request.GET.get("key", "")
    if only.isdigit():
        rows = [row for row in rows if row["api_key_id"] == int(only)]
    names = dict(
        ApiKey.objects.filter(
            user=request_user(request), pk__in=[r["api_key_id"] for r in rows]
        ).values_list("pk", "name")
    )
    for row in rows:
        row["name"] = names.get(row["api_key_id"], "(deleted key)")
    rows.sort(key=lambda r: -(r["spent"] or 0))
    context = {"rows": rows, "days": KEY_USAGE_DAYS, "single": only.isdigit()}
    return render(request, "monitoring/key_usage.html", context)
