"""Rollups of the request log (monitoring.models.UsageRollup): hourly and daily sums per
user, key, model and provider, with latency and time-to-first-token histograms.

`rollups_compute` recomputes whole buckets of a window from the log in one transaction
(their rows deleted, then written again), so running it twice, or over a window already
done, leaves the same rows. Celery beat recomputes the current hour and day every minute
(`rollups_refresh`); a later correction of the log is picked up by recomputing its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDay, TruncHour
from django.utils import timezone

from billing.models import RequestLog
from monitoring.models import LATENCY_BUCKETS_MS, UsageRollup

GROUP = ("user_id", "api_key_id", "served_model", "provider")
TRUNC: dict[str, type[TruncHour] | type[TruncDay]] = {
    UsageRollup.Granularity.HOUR: TruncHour,
    UsageRollup.Granularity.DAY: TruncDay,
}
STEP: dict[str, timedelta] = {
    UsageRollup.Granularity.HOUR: timedelta(hours=1),
    UsageRollup.Granularity.DAY: timedelta(days=1),
}


def bucket_start(moment: datetime, granularity: str) -> datetime:
    start = moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return start.replace(hour=0) if granularity == UsageRollup.Granularity.DAY else start


def _histogram(field: str) -> dict[str, Any]:
    """Cumulative counts under each bound (the buckets are their differences)."""
    return {
        f"{field}_le_{bound}": Count("id", filter=Q(**{f"{field}__lt": bound}))
        for bound in LATENCY_BUCKETS_MS
    }


def _buckets(row: dict[str, Any], field: str, total: int) -> list[int]:
    under = [row[f"{field}_le_{bound}"] for bound in LATENCY_BUCKETS_MS]
    counts, below = [], 0
    for cumulative in under:
        counts.append(cumulative - below)
        below = cumulative
    counts.append(total - below)  # past the last bound, or unknown (no figure recorded)
    return counts


@transaction.atomic
def rollups_compute(*, start: datetime, end: datetime, granularity: str) -> int:
    """Recomputes, from the log, the buckets from the one holding `start` to the one holding
    `end`'s last instant (whole buckets only); returns the rows written."""
    first = bucket_start(start, granularity)
    last = bucket_start(end, granularity)
    end = last if last == end else last + STEP[granularity]
    UsageRollup.objects.filter(granularity=granularity, bucket__gte=first, bucket__lt=end).delete()
    logs = RequestLog.objects.filter(created_at__gte=first, created_at__lt=end)
    bucket = TRUNC[granularity]("created_at")
    rows = (
        logs.annotate(at=bucket)
        .values("at", *GROUP)
        .annotate(
            n=Count("id"),
            failed=Count("id", filter=~Q(status=200)),
            failing=Count("id", filter=Q(status__gte=500)),
            prompt=Sum("prompt_tokens"),
            completion=Sum("completion_tokens"),
            cached=Sum("cached_tokens"),
            spent=Sum("cost"),
            at_provider=Sum("provider_cost"),
            latency_sum=Sum("total_latency_ms"),
            **_histogram("total_latency_ms"),
            **_histogram("ttft_ms"),
        )
    )
    errors: dict[tuple[Any, ...], dict[str, int]] = {}
    for e in (
        logs.exclude(status=200)
        .annotate(at=bucket)
        .values("at", *GROUP, "error_type")
        .annotate(n=Count("id"))
    ):
        key = (e["at"], *(e[g] for g in GROUP))
        kind = e["error_type"] or "error"
        errors.setdefault(key, {})[kind] = errors.get(key, {}).get(kind, 0) + e["n"]
    made = [
        UsageRollup(
            granularity=granularity,
            bucket=row["at"],
            user_id=row["user_id"],
            api_key_id=row["api_key_id"],
            model=row["served_model"],
            provider=row["provider"],
            requests=row["n"],
            errors=row["failed"],
            server_errors=row["failing"],
            errors_by_type=errors.get((row["at"], *(row[g] for g in GROUP)), {}),
            prompt_tokens=row["prompt"] or 0,
            completion_tokens=row["completion"] or 0,
            cached_tokens=row["cached"] or 0,
            cost=row["spent"] or Decimal(0),
            provider_cost=row["at_provider"] or Decimal(0),
            latency_ms_sum=row["latency_sum"] or 0.0,
            latency_buckets=_buckets(row, "total_latency_ms", row["n"]),
            ttft_buckets=_buckets(row, "ttft_ms", row["n"]),
        )
        for row in rows
    ]
    made += _totals_of(made)
    UsageRollup.objects.bulk_create(made, batch_size=1000)
    return len(made)


def _totals_of(rows: list[UsageRollup]) -> list[UsageRollup]:
    """Every customer's rows of a bucket summed per model and provider: the rows the staff,
    discovery and uptime views read (a few per model an hour, where the customers' rows are
    one per customer, key and model)."""
    summed: dict[tuple[Any, ...], UsageRollup] = {}
    for row in rows:
        key = (row.granularity, row.bucket, row.model, row.provider)
        total = summed.get(key)
        if total is None:
            total = summed[key] = _empty(row, total=True)
        _add(total, row)
    return list(summed.values())


def _empty(
    like: UsageRollup, *, total: bool, granularity: str = "", bucket: Any = None
) -> UsageRollup:
    return UsageRollup(
        granularity=granularity or like.granularity,
        bucket=bucket or like.bucket,
        total=total,
        user_id=None if total else like.user_id,
        api_key_id=None if total else like.api_key_id,
        model=like.model,
        provider=like.provider,
        errors_by_type={},
        cost=Decimal(0),
        provider_cost=Decimal(0),
        latency_ms_sum=0.0,
        latency_buckets=[0] * len(like.latency_buckets),
        ttft_buckets=[0] * len(like.ttft_buckets),
    )


def _add(into: UsageRollup, row: UsageRollup) -> None:
    into.requests += row.requests
    into.errors += row.errors
    into.server_errors += row.server_errors
    for kind, count in row.errors_by_type.items():
        into.errors_by_type[kind] = into.errors_by_type.get(kind, 0) + count
    into.prompt_tokens += row.prompt_tokens
    into.completion_tokens += row.completion_tokens
    into.cached_tokens += row.cached_tokens
    into.cost += row.cost
    into.provider_cost += row.provider_cost
    into.latency_ms_sum += row.latency_ms_sum
    into.latency_buckets = _added(into.latency_buckets, row.latency_buckets)
    into.ttft_buckets = _added(into.ttft_buckets, row.ttft_buckets)


@transaction.atomic
def rollup_day_from_hours(day: datetime) -> int:
    """A day's rows as the sum of its hours' (cheaper than the log at any size, and equal to
    it: every figure, histograms included, adds up)."""
    start = bucket_start(day, UsageRollup.Granularity.DAY)
    hours = UsageRollup.objects.filter(
        granularity=UsageRollup.Granularity.HOUR,
        bucket__gte=start,
        bucket__lt=start + timedelta(days=1),
    )
    merged: dict[tuple[Any, ...], UsageRollup] = {}
    for hour in hours:  # the customers' rows and the totals alike, each into its own
        key = (hour.total, hour.user_id, hour.api_key_id, hour.model, hour.provider)
        row = merged.get(key)
        if row is None:
            row = merged[key] = _empty(
                hour, total=hour.total, granularity=UsageRollup.Granularity.DAY, bucket=start
            )
        _add(row, hour)
    UsageRollup.objects.filter(granularity=UsageRollup.Granularity.DAY, bucket=start).delete()
    UsageRollup.objects.bulk_create(merged.values(), batch_size=1000)
    return len(merged)


def _added(a: list[int], b: list[int]) -> list[int]:
    return [x + y for x, y in zip(a, b, strict=True)]


def rollups_refresh(*, now: datetime | None = None) -> int:
    """The current hour and the one before (requests settle after they end, some late),
    then the day or days they belong to, from their hours."""
    now = now or timezone.now()
    hour = bucket_start(now, UsageRollup.Granularity.HOUR)
    before = hour - STEP[UsageRollup.Granularity.HOUR]
    written = rollups_compute(start=before, end=now, granularity=UsageRollup.Granularity.HOUR)
    days = {bucket_start(before, "day"), bucket_start(hour, "day")}
    for day in sorted(days):
        written += rollup_day_from_hours(day)
    return written


def percentile(buckets: list[int], fraction: float) -> int | None:
    """The bound (ms) under which `fraction` of the counted requests fell (summed buckets);
    None past the last bound or with no requests."""
    total = sum(buckets)
    if not total:
        return None
    seen = 0
    for bound, count in zip(LATENCY_BUCKETS_MS, buckets, strict=False):
        seen += count
        if seen >= fraction * total:
            return bound
    return None


def rollups_prune(*, now: datetime | None = None) -> int:
    """Rollups past GATEWAYZ_ROLLUP_RETENTION_DAYS (two years by default) deleted."""
    cutoff = (now or timezone.now()) - timedelta(days=settings.GATEWAYZ_ROLLUP_RETENTION_DAYS)
    deleted, _ = UsageRollup.objects.filter(bucket__lt=cutoff).delete()
    return deleted
