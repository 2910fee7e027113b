from __future__ import annotations

from celery import shared_task

from monitoring.health import health_check


@shared_task
def check_health(tier: str = "all") -> dict[str, int]:
    """Probes the providers (monitoring.health); returns how many are in each state."""
    counts: dict[str, int] = {}
    for sample in health_check(tier):
        counts[sample.status] = counts.get(sample.status, 0) + 1
    return counts
