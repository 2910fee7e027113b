"""Redis from sync code (balance changes, staff views, Celery, the key cache's shared copy):
one client per process, failing fast when Redis is away, so the caller can fall back (a
balance change then records what Redis missed instead, billing.services)."""

from __future__ import annotations

from functools import cache
from typing import Any

import redis
from django.conf import settings
from redis.connection import DefaultParser

from core.redis_topology import sync_redis

CONNECT_TIMEOUT_SECONDS = 1.0
REPLY_TIMEOUT_SECONDS = 2.0


class RedisUnavailable(redis.ConnectionError):
    """Redis answered that it cannot serve now: a master without the replicas in sync its
    min-replicas-to-write asks for (NOREPLICAS), a replica without its master (MASTERDOWN),
    a script running too long (BUSY). As good as unreachable: the caller falls back."""


class _Parser(DefaultParser):  # type: ignore[valid-type,misc]  # a class chosen at import
    EXCEPTION_CLASSES: dict[str, Any] = {
        **DefaultParser.EXCEPTION_CLASSES,
        "NOREPLICAS": RedisUnavailable,
        "MASTERDOWN": RedisUnavailable,
        "BUSY": RedisUnavailable,
    }


# RedisUnavailable included; on a Cluster, also a slot without a master (CLUSTERDOWN, as
# during a failover; core.redis_topology makes "no node reachable" a ConnectionError).
UNREACHABLE = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
)


@cache
def sync_client() -> redis.Redis:
    return sync_redis(
        settings.REDIS_URL,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REPLY_TIMEOUT_SECONDS,
        parser_class=_Parser,
    )


def replicated(client: redis.Redis) -> None:
    """After a money write from sync code: returns once GATEWAYZ_REDIS_WAIT_REPLICAS replicas
    hold it (or GATEWAYZ_REDIS_WAIT_MS passed), as the hot path's scripts do
    (core.redis_wire, "Replicas")."""
    if settings.GATEWAYZ_REDIS_WAIT_REPLICAS:
        client.wait(settings.GATEWAYZ_REDIS_WAIT_REPLICAS, settings.GATEWAYZ_REDIS_WAIT_MS)
