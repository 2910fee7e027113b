"""Active health checks: a probe per deployment that costs nothing at the provider.

- OpenAI-compatible providers: `GET /models` (the provider as a whole: one probe each);
- Anthropic: `POST /v1/messages/count_tokens` for the model (free, and per model);
- Gemini / Vertex: `POST models/{model}:countTokens` (free, and per model);
- Fal has no free endpoint: its health comes from traffic alone (the breakers).

Tiers: `hot` probes what served requests in the last hour, every minute; `all` probes
everything, every half hour (Celery beat, config.settings). A probe answered 200 within
DEGRADED_MS is operational; slower, or a 429, degraded; anything else down.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
from django.utils import timezone

from billing.models import RequestLog
from monitoring.models import HealthSample
from providers.catalog import Deployment, catalog_build
from providers.protocols import wire

log = logging.getLogger(__name__)

DEGRADED_MS = 2500.0
PROBE_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True, slots=True)
class Probe:
    provider: str
    model: str  # "" for a probe of the provider as a whole
    method: str
    url: str
    headers: dict[str, str]
    body: bytes | None


def probe_for(model_id: str, d: Deployment) -> Probe | None:
    request = wire(d).probe(d)
    if request is None:
        return None
    model = model_id if request.per_model else ""
    return Probe(d.provider, model, request.method, request.url, request.headers, request.body)


def probes(tier: str) -> list[Probe]:
    """What a tier checks, each probe once."""
    catalog = catalog_build()
    wanted = None
    if tier == "hot":
        since = timezone.now() - timedelta(hours=1)
        wanted = set(
            RequestLog.objects.filter(created_at__gte=since)
            .values_list("provider", "served_model")
            .distinct()
        )
    seen: dict[tuple[str, str], Probe] = {}
    for model in catalog.models.values():
        for d in model.deployments:
            if wanted is not None and (d.provider, model.id) not in wanted:
                continue
            probe = probe_for(model.id, d)
            if probe is not None:
                seen.setdefault((probe.provider, probe.model), probe)
    return list(seen.values())


def probe_run(client: httpx.Client, probe: Probe) -> HealthSample:
    started = time.perf_counter()
    try:
        response = client.request(
            probe.method, probe.url, headers=probe.headers, content=probe.body
        )
    except httpx.HTTPError as exc:
        return HealthSample(
            provider=probe.provider,
            model=probe.model,
            status=HealthSample.Status.DOWN,
            detail=type(exc).__name__,
        )
    ms = (time.perf_counter() - started) * 1000
    if response.status_code == 200:
        slow = ms > DEGRADED_MS
        status = HealthSample.Status.DEGRADED if slow else HealthSample.Status.OPERATIONAL
        detail = f"slow: {ms:.0f} ms" if slow else ""
    else:
        limited = response.status_code == 429
        status = HealthSample.Status.DEGRADED if limited else HealthSample.Status.DOWN
        detail = response.text[:300]
    return HealthSample(
        provider=probe.provider,
        model=probe.model,
        status=status,
        http_status=response.status_code,
        latency_ms=round(ms, 1),
        detail=detail,
    )


def health_check(tier: str = "all") -> list[HealthSample]:
    with httpx.Client(timeout=PROBE_TIMEOUT_SECONDS, trust_env=False) as client:
        samples = [probe_run(client, probe) for probe in probes(tier)]
    HealthSample.objects.bulk_create(samples)
    down = [
        f"{s.provider} {s.model}".strip() for s in samples if s.status == HealthSample.Status.DOWN
    ]
    if down:
        log.warning("health check (%s): down: %s", tier, ", ".join(down))
    return samples
