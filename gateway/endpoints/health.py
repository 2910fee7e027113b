"""Health for load balancers and orchestrators, served beside the inference routes (no
Django middleware): `/health` says the process is alive and touches nothing;
`/health/readiness` says whether it can serve, by checking the database, Redis and the
Celery broker. Without Redis or the broker it still serves (credit and limits fall back to
the database and the process, core.redis_link); without the database it still serves
the keys it cached and its catalog (gateway.invalidation): 200, status `degraded`, naming
what is down, so that an outage of either does not take every replica out of the load
balancer at once. Only a process without the database that never built its catalog cannot
serve: 503.

What failed is named by its kind only (`OperationalError`): the text of a connection error
names hosts and ports, which the public has no business reading; the log has it."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable

import orjson
from django.conf import settings
from django.db import connection

from core.asyncdb import db_call
from core.redis_link import redis_link
from core.redis_topology import async_redis
from gateway.http import JSON_HEADERS, Send, send_bytes
from providers.catalog import catalog_holder

log = logging.getLogger(__name__)

CHECK_TIMEOUT_SECONDS = 2


def _database() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


def _broker() -> None:
    from celery import current_app  # the project's (config.celery), set when Django starts

    with current_app.connection_for_write() as conn:
        conn.ensure_connection(max_retries=1, timeout=CHECK_TIMEOUT_SECONDS)


async def _redis() -> None:
    client = async_redis(settings.REDIS_URL, socket_timeout=CHECK_TIMEOUT_SECONDS)
    try:
        await client.ping()  # type: ignore[misc]  # redis-py types it for both clients
    finally:
        await client.aclose()


async def _check(name: str, probe: Awaitable[object]) -> tuple[str, dict[str, object]]:
    started = time.perf_counter()
    try:
        await asyncio.wait_for(probe, CHECK_TIMEOUT_SECONDS)
        result: dict[str, object] = {"status": "ok"}
    except Exception as exc:
        log.info("readiness: %s is down: %s: %s", name, type(exc).__name__, exc)
        result = {"status": "down", "error": type(exc).__name__}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return name, result


async def health_live(send: Send) -> None:
    await send_bytes(send, 200, b'{"status":"ok"}', JSON_HEADERS)


async def health_ready(send: Send) -> None:
    probes = [_check("database", db_call(_database)), _check("broker", db_call(_broker))]
    if settings.REDIS_URL:
        probes.append(_check("redis", _redis()))
    checks = dict(await asyncio.gather(*probes))
    if settings.REDIS_URL:
        # What the request path is doing, which may lag the probe by a second either way.
        checks["limits"] = redis_link.describe()
    if checks["database"]["status"] != "ok":
        if catalog_holder.has_one():
            checks["database"]["serving_with"] = "cached keys and catalog"
            status = "degraded"
        else:
            status = "unavailable"
    elif all(c["status"] == "ok" for c in checks.values()):
        status = "ok"
    else:
        status = "degraded"
    body = {"status": status, "checks": checks}
    code = 503 if status == "unavailable" else 200
    await send_bytes(send, code, orjson.dumps(body), JSON_HEADERS)
