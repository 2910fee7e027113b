"""Redis from sync code (balance changes, staff views, Celery, the key cache's shared copy):
one client per process, failing fast when Redis is away, so the caller can fall back (a
balance change then records what Redis missed instead, billing.services)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

from core.redis_topology import sync_redis

CONNECT_TIMEOUT_SECONDS = 1.0
REPLY_TIMEOUT_SECONDS = 2.0
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


@cache
def sync_client() -> redis.Redis:
    return sync_redis(
        settings.REDIS_URL,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REPLY_TIMEOUT_SECONDS,
    )


def replicated(client: redis.Redis) -> None:
    """After a money write from sync code: returns once GATEWAYZ_REDIS_WAIT_REPLICAS replicas
    hold it (or GATEWAYZ_REDIS_WAIT_MS passed), as the hot path's scripts do
    (core.redis_wire, "Replicas")."""
    if settings.GATEWAYZ_REDIS_WAIT_REPLICAS:
        client.wait(settings.GATEWAYZ_REDIS_WAIT_REPLICAS, settings.GATEWAYZ_REDIS_WAIT_MS)
