"""The cache (django-redis) over a Redis Cluster: django-redis makes one client per server
from a connection pool, which a Cluster does not have; this factory gives it redis-py's
Cluster client instead (core.redis_topology), one per process. The cache's commands are
single-key (get, set, incr, delete; a delete of several keys is split by slot by
redis-py)."""

from __future__ import annotations

from typing import Any, ClassVar

import redis
from django_redis.pool import ConnectionFactory  # type: ignore[import-untyped]

from core.redis_topology import sync_redis


class ClusterConnectionFactory(ConnectionFactory):
    _clusters: ClassVar[dict[str, redis.Redis]] = {}

    def connect(self, url: str) -> redis.Redis:
        client = self._clusters.get(url)
        if client is None:
            params = self.make_connection_params(url)
            timeouts = {
                name: params[name]
                for name in ("socket_timeout", "socket_connect_timeout")
                if name in params
            }
            client = self._clusters[url] = sync_redis(url, **timeouts)
        return client

    def disconnect(self, connection: Any) -> None:
        connection.close()
