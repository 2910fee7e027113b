"""Figures over the rollups (monitoring.models.UsageRollup): what the staff monitoring API,
the public discovery endpoints and the uptime timelines compute, never from the request log.

A window is read at hour granularity up to a week and at day granularity beyond (a week of
hours is at most 168 buckets per group; a quarter of hours would be 2,160). Rows are summed
in Python, histograms included: the buckets of any set of rows add up, so percentiles of a
provider over a week come from its summed buckets (monitoring.rollups.percentile).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, IntegerField, QuerySet, Sum
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast
from django.utils import timezone

from core.replica import read_alias
from monitoring.models import LATENCY_BUCKETS_MS, UsageRollup
from monitoring.rollups import bucket_start, percentile

HOURS_READ_AS_HOURS = 24 * 7
BUCKETS = len(LATENCY_BUCKETS_MS) + 1
# Summed across rows, by the database (sums_by) or in Python (Totals.add).
SUMMED = (
    "requests",
    "errors",
    "server_errors",
    "prompt_tokens",
    "completion_tokens",
    "cached_tokens",
    "cost",
    "provider_cost",
    "latency_ms_sum",
)
# The columns a Totals needs: fetched as tuples, not model instances (a week of a busy
# gateway's hours is tens of thousands of rows).
COLUMNS = (
    "bucket",
    "model",
    "provider",
    *SUMMED,
    "errors_by_type",
    "latency_buckets",
    "ttft_buckets",
)


@dataclass(frozen=True, slots=True)
class Window:
    start: datetime
    end: datetime
    granularity: str

    @property
    def step(self) -> timedelta:
        return timedelta(hours=1) if self.granularity == "hour" else timedelta(days=1)


def window_last(hours: int, *, now: datetime | None = None) -> Window:
    """At least the last `hours` up to now, in whole buckets: from the bucket that holds
    `now - hours` to the current one (as far as it has been rolled up). Whole buckets
    only, so "the last hour" at 19:00:40 is 18:00 to now, not a minute of data."""
    now = now or timezone.now()
    granularity = "hour" if hours <= HOURS_READ_AS_HOURS else "day"
    return Window(bucket_start(now - timedelta(hours=hours), granularity), now, granularity)


def rollups_in(window: Window, **filters: Any) -> QuerySet[UsageRollup]:
    """The window's total rows (every customer summed per model and provider)."""
    return UsageRollup.objects.using(read_alias()).filter(
        total=True,
        granularity=window.granularity,
        bucket__gte=bucket_start(window.start, window.granularity),
        bucket__lt=window.end,
        **filters,
    )


def _customers_rows(window: Window, **filters: Any) -> QuerySet[UsageRollup]:
    """The customers' rows of the window; by day past a day (a customer's day is one row
    where their hours are up to 24: the window's first day then counts whole)."""
    granularity = window.granularity
    if window.end - window.start > timedelta(hours=25):
        granularity = "day"
    return UsageRollup.objects.using(read_alias()).filter(
        total=False,
        granularity=granularity,
        bucket__gte=bucket_start(window.start, granularity),
        bucket__lt=window.end,
        user_id__isnull=False,
        **filters,
    )


def users_by(window: Window, group: str, **filters: Any) -> dict[Any, int]:
    """Distinct customers per `group` (a column) over the window, counted by the database
    from the customers' own rows (distinct counts do not add up across rows). The distinct
    pairs first, then a count of them: a hash of pairs read from the covering index
    (rollup_customers_idx), where COUNT(DISTINCT) sorts every group's rows."""
    pairs = _customers_rows(window, **filters).values(group, "user_id").distinct().order_by()
    try:
        inner, params = pairs.query.sql_with_params()
    except EmptyResultSet:  # a filter no row can match (`model__in=[]`)
        return {}
    db = connections[pairs.db]  # where the queryset reads: the replica, if there is one
    column = db.ops.quote_name(group)
    with db.cursor() as cursor:
        cursor.execute(
            f"SELECT pairs.{column}, COUNT(*) FROM ({inner}) pairs GROUP BY pairs.{column}",
            params,
        )
        return dict(cursor.fetchall())


def users_count(window: Window, **filters: Any) -> int:
    counted = _customers_rows(window, **filters).aggregate(n=Count("user_id", distinct=True))
    return int(counted["n"])


def with_users(groups: dict[Any, Totals], users: dict[Any, int]) -> dict[Any, Totals]:
    for key, summed in groups.items():
        summed.users = users.get(key, 0)
    return groups


@dataclass(slots=True)
class Totals:
    """Rollup rows summed: counts, money, and the histograms they carry."""

    requests: int = 0
    errors: int = 0
    server_errors: int = 0  # 5xx: the gateway's or a provider's failing, not the client's
    errors_by_type: dict[str, int] = field(default_factory=dict)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = field(default_factory=Decimal)
    provider_cost: Decimal = field(default_factory=Decimal)
    latency_ms_sum: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    ttft: list[int] = field(default_factory=lambda: [0] * BUCKETS)
    users: int = 0  # distinct customers, when counted (users_by): not summed from rows

    def add(self, row: dict[str, Any]) -> None:
        """A rollup row (its COLUMNS) added in."""
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + row[name])
        self._add_counts(row["errors_by_type"], row["latency_buckets"], row["ttft_buckets"])

    def merge(self, other: Totals) -> None:
        for name in SUMMED:
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self._add_counts(other.errors_by_type, other.latency, other.ttft)

    def _add_counts(
        self, errors_by_type: dict[str, int], latency: list[int], ttft: list[int]
    ) -> None:
        for kind, count in errors_by_type.items():
            self.errors_by_type[kind] = self.errors_by_type.get(kind, 0) + count
        _add_into(self.latency, latency)
        _add_into(self.ttft, ttft)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def error_rate(self) -> float:
        return round(self.errors / self.requests, 4) if self.requests else 0.0

    @property
    def successes(self) -> int:
        return self.requests - self.errors

    def latency_ms(self, fraction: float) -> int | None:
        return percentile(self.latency, fraction)

    @property
    def latency_avg_ms(self) -> float | None:
        return round(self.latency_ms_sum / self.requests, 2) if self.requests else None

    def ttft_ms(self, fraction: float) -> int | None:
        return percentile(self.ttft, fraction)


def _add_into(into: list[int], counts: list[int]) -> None:
    for i, count in enumerate(counts[:BUCKETS]):
        into[i] += count


def totals(rows: QuerySet[UsageRollup]) -> Totals:
    out = Totals()
    for row in rows.values(*COLUMNS).iterator(chunk_size=5000):
        out.add(row)
    return out


def totals_by(
    rows: QuerySet[UsageRollup], key: Callable[[dict[str, Any]], Hashable]
) -> dict[Any, Totals]:
    """The rows summed per `key(row)` (a column, a pair of them, the bucket...)."""
    out: dict[Any, Totals] = {}
    for row in rows.values(*COLUMNS).iterator(chunk_size=5000):
        group = key(row)
        summed = out.get(group)
        if summed is None:
            summed = out[group] = Totals()
        summed.add(row)
    return out


def _bucket_sums(field: str, prefix: str) -> dict[str, Sum]:
    """Each histogram bucket summed by the database (the JSON array's i-th item, on
    Postgres and SQLite alike)."""
    return {
        f"{prefix}{i}": Sum(Cast(KeyTextTransform(str(i), field), IntegerField()))
        for i in range(BUCKETS)
    }


def sums_by(
    rows: QuerySet[UsageRollup], *columns: str, histograms: bool = False
) -> dict[Any, Totals]:
    """The rows summed per `columns` by the database, their latency and time-to-first-token
    histograms too if asked (for percentiles): nothing read row by row in Python. Keys are
    the column's value, or a tuple of them for several. Errors by type are not summed
    (totals_by sums them)."""
    sums: dict[str, Any] = {f"s_{f}": Sum(f) for f in SUMMED}
    if histograms:
        sums |= _bucket_sums("latency_buckets", "l") | _bucket_sums("ttft_buckets", "t")
    out: dict[Any, Totals] = {}
    for row in rows.values(*columns).annotate(**sums).order_by():
        key = row[columns[0]] if len(columns) == 1 else tuple(row[c] for c in columns)
        part = out[key] = Totals()
        for name in SUMMED:
            setattr(part, name, row[f"s_{name}"] or type(getattr(part, name))())
        if histograms:
            part.latency = [row[f"l{i}"] or 0 for i in range(BUCKETS)]
            part.ttft = [row[f"t{i}"] or 0 for i in range(BUCKETS)]
    return out


def ranked(
    groups: dict[Any, Totals], sort_by: str, *, limit: int, descending: bool = True
) -> list[tuple[Any, Totals]]:
    """The groups ordered by requests, tokens, users, cost or latency (p50), ties by name."""
    keys: dict[str, Callable[[Totals], Any]] = {
        "requests": lambda t: t.requests,
        "tokens": lambda t: t.tokens,
        "users": lambda t: t.users,
        "cost": lambda t: t.cost,
        "latency": lambda t: t.latency_ms(0.5) or LATENCY_BUCKETS_MS[-1] * 10,
        "error_rate": lambda t: t.error_rate,
    }
    figure = keys[sort_by]
    items = sorted(groups.items(), key=lambda item: str(item[0]))
    items.sort(key=lambda item: figure(item[1]), reverse=descending)
    return items[:limit]
