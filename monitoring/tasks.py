from __future__ import annotations

from celery import shared_task

from monitoring.anomalies import anomalies_sync
from monitoring.health import health_check
from monitoring.incidents import incidents_evaluate
from monitoring.rollups import rollups_prune, rollups_refresh


@shared_task
def check_health(tier: str = "all") -> dict[str, int]:
    """Probes the providers (monitoring.health); returns how many are in each state."""
    counts: dict[str, int] = {}
    for sample in health_check(tier):
        counts[sample.status] = counts.get(sample.status, 0) + 1
    return counts


@shared_task
def refresh_rollups() -> int:
    """Recomputes the current hour's and day's rollups of the request log."""
    return rollups_refresh()


@shared_task
def evaluate_incidents() -> None:
    """Opens and closes incidents from the last minutes' traffic and checks, and from this
    hour's anomalies."""
    incidents_evaluate()
    anomalies_sync()


@shared_task
def prune_rollups() -> int:
    """Rollups past their retention (two years) deleted."""
    return rollups_prune()
