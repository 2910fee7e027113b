"""Incidents opened and closed by themselves (Celery beat, every minute):

- **error_surge**: a provider's 5xx rate over the last EVALUATION_WINDOW is at least
  OPEN_ERROR_RATE on at least MIN_REQUESTS requests; closed once it is under
  CLOSE_ERROR_RATE (hysteresis: a rate wavering around one threshold does not open and close
  an incident every minute), or when QUIET_CLOSE passes with no traffic to judge by;
- **downtime**: a provider's last FAILED_CHECKS whole-provider checks all failed; closed by
  the first check that answers.

Only the gateway's and providers' failures count (status 5xx), never a client's own 4xx
or its leaving early. Anomalies (monitoring.anomalies) open and close theirs the same way,
through `incident_open` and `incident_close`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from django.db import IntegrityError, transaction
from django.db.models import Count, Q
from django.utils import timezone

from billing.models import RequestLog
from monitoring.models import HealthSample, Incident

EVALUATION_WINDOW = timedelta(minutes=5)
MIN_REQUESTS = 5
OPEN_ERROR_RATE = 0.25
CLOSE_ERROR_RATE = 0.10
QUIET_CLOSE = timedelta(minutes=15)
FAILED_CHECKS = 2


def incident_open(
    *, provider: str, model: str = "", kind: str, figure: float, detail: str, now: datetime
) -> Incident:
    """The open incident of this provider, model and kind, opened now if there is none; its
    peak raised to `figure`."""
    current = Incident.objects.filter(
        provider=provider, model=model, kind=kind, closed_at__isnull=True
    ).first()
    if current is None:
        try:
            with transaction.atomic():
                return Incident.objects.create(
                    provider=provider,
                    model=model,
                    kind=kind,
                    opened_at=now,
                    peak=figure,
                    detail=detail[:300],
                )
        except IntegrityError:  # opened by a concurrent evaluation: one open per kind
            current = Incident.objects.get(
                provider=provider, model=model, kind=kind, closed_at__isnull=True
            )
    if figure > current.peak:
        Incident.objects.filter(pk=current.pk).update(peak=figure, detail=detail[:300])
    return current


def incident_close(*, provider: str, model: str = "", kind: str, now: datetime) -> int:
    return Incident.objects.filter(
        provider=provider, model=model, kind=kind, closed_at__isnull=True
    ).update(closed_at=now)


def _error_surges(now: datetime) -> None:
    recent = (
        RequestLog.objects.filter(created_at__gte=now - EVALUATION_WINDOW, created_at__lt=now)
        .exclude(provider="")
        .values("provider")
        .annotate(n=Count("id"), failing=Count("id", filter=Q(status__gte=500)))
    )
    measured = {row["provider"]: (row["n"], row["failing"]) for row in recent}
    for provider, (n, failing) in measured.items():
        rate = failing / n
        if n >= MIN_REQUESTS and rate >= OPEN_ERROR_RATE:
            detail = f"{failing} of {n} requests failed in the last {EVALUATION_WINDOW}"
            incident_open(
                provider=provider,
                kind=Incident.Kind.ERROR_SURGE,
                figure=round(rate, 4),
                detail=detail,
                now=now,
            )
        elif n >= MIN_REQUESTS and rate < CLOSE_ERROR_RATE:
            incident_close(provider=provider, kind=Incident.Kind.ERROR_SURGE, now=now)
    # Open surges with no traffic since: nothing says they go on.
    for incident in Incident.objects.filter(
        kind=Incident.Kind.ERROR_SURGE, closed_at__isnull=True, opened_at__lt=now - QUIET_CLOSE
    ):
        last = RequestLog.objects.filter(provider=incident.provider).order_by("-created_at")
        latest = last.values_list("created_at", flat=True).first()
        if latest is None or latest < now - QUIET_CLOSE:
            incident_close(provider=incident.provider, kind=incident.kind, now=now)


def _downtimes(now: datetime) -> None:
    since = now - timedelta(hours=1)
    checked = (
        HealthSample.objects.filter(model="", checked_at__gte=since, checked_at__lte=now)
        .order_by("provider", "-checked_at")
        .values_list("provider", "status", "http_status", "checked_at")
    )
    latest: dict[str, list[tuple[str, int]]] = {}
    for provider, status, http_status, _ in checked:
        kept = latest.setdefault(provider, [])
        if len(kept) < FAILED_CHECKS:
            kept.append((status, http_status))
    for provider, checks in latest.items():
        if len(checks) == FAILED_CHECKS and all(s == HealthSample.Status.DOWN for s, _ in checks):
            codes = ", ".join(str(code or "no answer") for _, code in checks)
            incident_open(
                provider=provider,
                kind=Incident.Kind.DOWNTIME,
                figure=1.0,
                detail=f"the last {FAILED_CHECKS} checks failed ({codes})",
                now=now,
            )
        elif checks[0][0] != HealthSample.Status.DOWN:
            incident_close(provider=provider, kind=Incident.Kind.DOWNTIME, now=now)


def incidents_evaluate(*, now: datetime | None = None) -> None:
    now = now or timezone.now()
    _error_surges(now)
    _downtimes(now)
