"""What a served request tells about its deployment once it is over (passive health): a
stream cut midway counts against its circuit breaker, a success adds to its measured
throughput."""

from __future__ import annotations

from core.outcome import RequestOutcome
from gateway.guards.breaker_board import board
from gateway.guards.breaker_rules import breaker_key
from gateway.guards.deployment_stats import stats_of
from providers.catalog import CatalogModel, Deployment


async def stream_broke(model: CatalogModel, deployment: Deployment) -> None:
    """A stream cut midway counts against the deployment's breaker."""
    if deployment.byok:
        return
    key = breaker_key(deployment.provider, model.family)
    await board().record(key, False, "the stream ended early")


def throughput_measure(
    outcome: RequestOutcome, model: CatalogModel, deployment: Deployment
) -> None:
    """A success adds to the deployment's measured output tokens per second."""
    if outcome.status == 200 and outcome.completion_tokens:
        generating_ms = outcome.total_latency_ms - (outcome.ttft_ms or 0.0)
        stats = stats_of(deployment.provider, model.family)
        stats.throughput_add(outcome.completion_tokens, generating_ms / 1000)
