"""Anomalies: a provider × model whose error rate or median latency this hour is far from
what the same hour of the previous seven days saw (a z-score against that baseline, so a
model that is always slow at 9:00 UTC is not flagged for it).

Read from the hour rollups. A figure needs MIN_REQUESTS in the hour and at least
MIN_BASELINE_HOURS of history to be judged; the baseline's spread is floored (an error rate
that was exactly 0% every day would otherwise make one failure infinitely unusual). At
Z_WARNING it is a warning, at Z_CRITICAL critical; `anomalies_sync` keeps one open incident
per anomaly and closes it when the figure is back within Z_WARNING.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from monitoring.incidents import incident_close, incident_open
from monitoring.models import Incident, UsageRollup
from monitoring.rollups import bucket_start
from monitoring.stats import COLUMNS, Totals

MIN_REQUESTS = 20
MIN_BASELINE_HOURS = 3
BASELINE_DAYS = 7
Z_WARNING = 3.0
Z_CRITICAL = 5.0
# The least spread assumed: 2 points of error rate, 100 ms of median latency.
FLOOR = {"error_rate": 0.02, "latency_p50_ms": 100.0}
KINDS = {"error_rate": Incident.Kind.ERROR_ANOMALY, "latency_p50_ms": Incident.Kind.LATENCY_ANOMALY}


@dataclass(frozen=True, slots=True)
class Anomaly:
    provider: str
    model: str
    metric: str  # error_rate | latency_p50_ms
    hour: datetime
    value: float
    expected: float
    z_score: float

    @property
    def severity(self) -> str:
        return "critical" if self.z_score >= Z_CRITICAL else "warning"

    def view(self) -> dict[str, Any]:
        return {
            "type": "high_error_rate" if self.metric == "error_rate" else "latency_spike",
            "provider": self.provider,
            "model": self.model,
            "metric": self.metric,
            "hour": self.hour,
            "value": round(self.value, 4),
            "expected": round(self.expected, 4),
            "z_score": round(self.z_score, 2),
            "severity": self.severity,
        }


def _figure(totals: Totals, metric: str) -> float | None:
    if metric == "error_rate":
        return totals.server_errors / totals.requests if totals.requests else None
    latency = totals.latency_ms(0.5)
    return float(latency) if latency is not None else None


def _hours(hour: datetime) -> dict[tuple[str, str, datetime], Totals]:
    """This hour's rows and those of the same hour on the days before, per provider × model."""
    wanted = [hour - timedelta(days=d) for d in range(BASELINE_DAYS + 1)]
    rows = UsageRollup.objects.filter(total=True, granularity="hour", bucket__in=wanted).exclude(
        provider=""
    )
    out: dict[tuple[str, str, datetime], Totals] = {}
    for row in rows.values(*COLUMNS):
        key = (row["provider"], row["model"], row["bucket"])
        out.setdefault(key, Totals()).add(row)
    return out


def anomalies_detect(*, now: datetime | None = None) -> list[Anomaly]:
    hour = bucket_start(now or timezone.now(), "hour")
    by_hour = _hours(hour)
    found = []
    for (provider, model, at), current in by_hour.items():
        if at != hour or current.requests < MIN_REQUESTS:
            continue
        for metric in FLOOR:
            value = _figure(current, metric)
            history = [
                figure
                for days in range(1, BASELINE_DAYS + 1)
                if (past := by_hour.get((provider, model, hour - timedelta(days=days))))
                and past.requests >= MIN_REQUESTS
                and (figure := _figure(past, metric)) is not None
            ]
            if value is None or len(history) < MIN_BASELINE_HOURS:
                continue
            expected = statistics.fmean(history)
            spread = max(statistics.pstdev(history), FLOOR[metric])
            z = (value - expected) / spread
            if z >= Z_WARNING:  # worse only: a quieter or faster hour is no anomaly
                found.append(Anomaly(provider, model, metric, hour, value, expected, z))
    found.sort(key=lambda a: -a.z_score)
    return found


def anomalies_sync(*, now: datetime | None = None) -> list[Anomaly]:
    """Opens an incident per anomaly found; closes those of anomalies that are gone."""
    now = now or timezone.now()
    found = anomalies_detect(now=now)
    current = {(a.provider, a.model, KINDS[a.metric]) for a in found}
    for anomaly in found:
        incident_open(
            provider=anomaly.provider,
            model=anomaly.model,
            kind=KINDS[anomaly.metric],
            figure=round(anomaly.z_score, 2),
            detail=f"{anomaly.metric} {anomaly.value:.4g} against {anomaly.expected:.4g} usually",
            now=now,
        )
    for incident in Incident.objects.filter(kind__in=KINDS.values(), closed_at__isnull=True):
        if (incident.provider, incident.model, incident.kind) not in current:
            incident_close(
                provider=incident.provider, model=incident.model, kind=incident.kind, now=now
            )
    return found
