"""Redis from sync code (balance changes, staff views, Celery, the key cache's shared copy):
one client per process, failing fast when Redis is away, so the caller can fall back (a
balance change then records what Redis missed instead, billing.services)."""

from __future__ import annotations

from functools import cache

import redis
from django.conf import settings

CONNECT_TIMEOUT_SECONDS = 1.0
REPLY_TIMEOUT_SECONDS = 2.0
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)


@cache
def sync_client() -> redis.Redis:
    return redis.Redis.from_url(
        settings.REDIS_URL,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=REPLY_TIMEOUT_SECONDS,
    )
