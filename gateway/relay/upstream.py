"""The one pooled HTTP client each process uses for every upstream call: aiohttp, chosen by
measurement (bench/): httpx's pool costs several times the CPU per request at concurrency."""

from __future__ import annotations

import functools

import aiohttp
from django.conf import settings

from providers.ssrf import GuardedResolver

_session: aiohttp.ClientSession | None = None

# What a failed upstream call raises: transport errors, and timeouts (asyncio's).
UpstreamError = (aiohttp.ClientError, TimeoutError)


def upstream_session() -> aiohttp.ClientSession:
    global _session
    if _session is None or _session.closed:
        connector = aiohttp.TCPConnector(
            limit=settings.GATEWAYZ_UPSTREAM_MAX_CONNECTIONS,
            ttl_dns_cache=300,
            keepalive_timeout=30,
            resolver=GuardedResolver(),  # no upstream call into our own network
        )
        # Timeouts are set per request from the provider's own settings; responses are
        # relayed as they come, never decompressed and re-compressed.
        _session = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=True,
            trust_env=False,
            skip_auto_headers=("User-Agent",),
        )
    return _session


@functools.lru_cache(maxsize=1024)  # a handful of distinct pairs; built once each
def upstream_timeout(connect: float, read: float) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=None, sock_connect=connect, sock_read=read)


async def upstream_client_close() -> None:
    global _session
    if _session is not None:
        await _session.close()
        _session = None
