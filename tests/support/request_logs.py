"""Request-log rows as settlement writes them, and their rollups: the data the monitoring,
usage and discovery views read."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from django.utils import timezone

from billing.models import RequestLog
from monitoring.rollups import rollups_compute


def request_logged(
    *,
    model: str,
    provider: str,
    at: datetime | None = None,
    user: Any = None,
    status: int = 200,
    latency_ms: float = 100.0,
    prompt_tokens: int = 100,
    completion_tokens: int = 10,
    cost: str = "0.5",
    provider_cost: str = "0.4",
    error_type: str = "",
) -> RequestLog:
    return RequestLog.objects.create(
        request_id=uuid.uuid4().hex,
        user=user,
        endpoint="chat.completions",
        requested_model=model,
        served_model=model,
        provider=provider,
        status=status,
        error_type=error_type or ("" if status == 200 else "upstream_error"),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=Decimal(cost),
        provider_cost=Decimal(provider_cost),
        total_latency_ms=latency_ms,
        ttft_ms=latency_ms / 2,
        created_at=at or timezone.now() - timedelta(minutes=1),
    )


def rolled_up(days: int = 3) -> None:
    """Every hour and day of the last `days` days rolled up, as beat keeps them."""
    now = timezone.now()
    rollups_compute(start=now - timedelta(days=days), end=now, granularity="hour")
    rollups_compute(start=now - timedelta(days=days), end=now, granularity="day")


def log_emptied() -> None:
    """The log, rollups, checks and incidents emptied inside the test's transaction (rolled
    back after it): figures over everything see only the test's own rows, not those the
    gateway processes of other tests committed."""
    from monitoring.models import HealthSample, Incident, UsageRollup

    RequestLog.objects.all().delete()
    UsageRollup.objects.all().delete()
    HealthSample.objects.all().delete()
    Incident.objects.all().delete()
