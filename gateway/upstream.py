"""The one pooled HTTP client each process uses for every upstream call."""

from __future__ import annotations

import httpx
from django.conf import settings

_client: httpx.AsyncClient | None = None


def upstream_client() -> httpx.AsyncClient:
    global _client
    if _client is None:
        limits = httpx.Limits(
            max_connections=settings.GATEWAYZ_UPSTREAM_MAX_CONNECTIONS,
            max_keepalive_connections=settings.GATEWAYZ_UPSTREAM_MAX_CONNECTIONS,
            keepalive_expiry=30,
        )
        # Timeouts are set per request from the provider's own settings.
        _client = httpx.AsyncClient(limits=limits, http2=False, trust_env=False)
    return _client


async def upstream_client_close() -> None:
    global _client
    if _client is not None:
        await _client.aclose()
        _client = None
