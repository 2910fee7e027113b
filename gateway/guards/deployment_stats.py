"""What this process measures of each deployment (provider × model): the time to its first
byte, its output tokens per second and the requests in flight. Routing orders by them
(gateway.pipeline.routing); the upstream call and passive health record them."""

from __future__ import annotations

from dataclasses import dataclass

EWMA_WEIGHT = 0.2  # of the newest sample


@dataclass(slots=True)
class DeploymentStats:
    """Measured in this process: EWMAs of the time to the provider's first byte and of
    output tokens per second, and the requests in flight now."""

    latency_ms: float | None = None
    tokens_per_second: float | None = None
    in_flight: int = 0

    def latency_add(self, ms: float) -> None:
        old = self.latency_ms
        self.latency_ms = ms if old is None else old + EWMA_WEIGHT * (ms - old)

    def throughput_add(self, tokens: int, seconds: float) -> None:
        if tokens <= 0 or seconds <= 0:
            return
        rate, old = tokens / seconds, self.tokens_per_second
        self.tokens_per_second = rate if old is None else old + EWMA_WEIGHT * (rate - old)


_stats: dict[tuple[str, str], DeploymentStats] = {}


def stats_of(provider: str, model: str) -> DeploymentStats:
    key = (provider, model)
    stats = _stats.get(key)
    if stats is None:
        stats = _stats[key] = DeploymentStats()
    return stats
