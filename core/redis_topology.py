"""Where Redis is: one server at REDIS_URL, or the master a set of Sentinels names
(REDIS_SENTINELS, docs/deployment.md, "Redis").

With Sentinels, REDIS_URL still gives the database, user and password
(`redis://:secret@mymaster/0`); its host is ignored, the master is asked of the Sentinels
each time a connection is made, and a connection that finds it reached a replica (a
master demoted by a failover answers writes with READONLY) is dropped, so the next one
asks again. Every client of the project is made here, so all of them follow a failover:
the hot path's own (core.redis_wire, which calls `master_address`), redis-py's sync and
asyncio clients, the cache and Celery's broker (config/settings.py).

Over a Redis Cluster (REDIS_CLUSTER_NODES, its seeds), redis-py's Cluster clients are
made here too, and the hot path has a wire of its own (core.redis_cluster).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, cast
from urllib.parse import quote

import hiredis
import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from django.conf import settings
from redis.connection import parse_url

SENTINEL_TIMEOUT_SECONDS = 1.0


@dataclass(frozen=True)
class Sentinels:
    addresses: tuple[tuple[str, int], ...]
    master: str
    password: str | None

    @classmethod
    def parse(cls, addresses: list[str], master: str, password: str) -> Sentinels | None:
        if not addresses:
            return None
        return cls(parse_addresses(addresses, "REDIS_SENTINELS"), master, password or None)


def parse_addresses(addresses: list[str], setting: str) -> tuple[tuple[str, int], ...]:
    pairs = []
    for address in addresses:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise ValueError(f"{setting}: {address!r} is not host:port")
        pairs.append((host.strip("[]"), int(port)))
    return tuple(pairs)


def sentinels() -> Sentinels | None:
    found: Sentinels | None = settings.REDIS_SENTINELS
    return found


def _credentials(url: str) -> dict[str, Any]:
    options = parse_url(url)
    return {
        "db": int(options.get("db") or 0),
        "username": options.get("username"),
        "password": options.get("password"),
    }


def cluster_seeds() -> tuple[tuple[str, int], ...]:
    seeds: tuple[tuple[str, int], ...] = settings.REDIS_CLUSTER_NODES
    return seeds


def _cluster_options(url: str, options: dict[str, Any]) -> dict[str, Any]:
    credentials = _credentials(url)
    del credentials["db"]  # a Cluster has database 0 only (checked in settings)
    parser = options.pop("parser_class", None)
    if parser is not None:
        # redis-py's Cluster takes no parser, but takes the class of its connections.
        options["connection_class"] = type(
            "ParsedConnection",
            (redis.connection.Connection,),
            {"__init__": _parsed_init(parser)},
        )
    return {**credentials, **options}


def _parsed_init(parser: Any) -> Any:
    def __init__(self: redis.connection.Connection, **kwargs: Any) -> None:
        redis.connection.Connection.__init__(self, parser_class=parser, **kwargs)

    return __init__


def url_database(url: str) -> int:
    database: int = _credentials(url)["db"]
    return database


def sync_redis(url: str, **options: Any) -> redis.Redis:
    """redis-py's client for `url`, through the Sentinels when there are some, or over the
    Cluster (typed as one server's: the project uses the commands both have)."""
    seeds = cluster_seeds()
    if seeds:
        # Given as a URL (of the first seed): only then does redis-py build its nodes'
        # connections from a pool, which takes a connection class.
        host, port = seeds[0]
        try:
            cluster = redis.cluster.RedisCluster(
                url=redis_url_at(url, f"{host}:{port}").rsplit("/", 1)[0],
                startup_nodes=[redis.cluster.ClusterNode(h, p) for h, p in seeds[1:]],
                **_cluster_options(url, options),
            )
        except redis.exceptions.RedisClusterException as exc:
            # It asks for the slot map as it is made: no node answered.
            raise redis.ConnectionError(str(exc)) from exc
        return cast(redis.Redis, cluster)
    found = sentinels()
    if found is None:
        return redis.Redis.from_url(url, **options)
    sentinel = redis.sentinel.Sentinel(
        list(found.addresses),
        sentinel_kwargs={"password": found.password, "socket_timeout": SENTINEL_TIMEOUT_SECONDS},
        **options,
    )
    return sentinel.master_for(found.master, **_credentials(url))


def async_redis(url: str, **options: Any) -> redis.asyncio.Redis:
    """redis-py's asyncio client for `url`, through the Sentinels when there are some, or
    over the Cluster."""
    seeds = cluster_seeds()
    if seeds:
        nodes = [redis.asyncio.cluster.ClusterNode(host, port) for host, port in seeds]
        cluster = redis.asyncio.cluster.RedisCluster(
            startup_nodes=nodes, **_cluster_options(url, options)
        )
        return cast(redis.asyncio.Redis, cluster)
    found = sentinels()
    if found is None:
        return redis.asyncio.Redis.from_url(url, **options)
    sentinel = redis.asyncio.sentinel.Sentinel(
        list(found.addresses),
        sentinel_kwargs={"password": found.password, "socket_timeout": SENTINEL_TIMEOUT_SECONDS},
        **options,
    )
    return sentinel.master_for(found.master, **_credentials(url))


class NoMaster(ConnectionError):
    """No Sentinel answered with a master (all unreachable, or a failover under way)."""


async def _ask(address: tuple[str, int], found: Sentinels) -> tuple[str, int] | None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        parser = hiredis.Reader()
        commands = []
        if found.password:
            commands.append(hiredis.pack_command(("AUTH", found.password)))  # type: ignore[arg-type]
        # (hiredis' stub types the tuple as one element; it takes any number.)
        ask = ("SENTINEL", "get-master-addr-by-name", found.master)
        commands.append(hiredis.pack_command(ask))  # type: ignore[arg-type]
        writer.write(b"".join(commands))
        replies: list[Any] = []
        while len(replies) < len(commands):
            data = await reader.read(4096)
            if not data:
                return None
            parser.feed(data)
            while (reply := parser.gets()) is not False:
                replies.append(reply)
        answer = replies[-1]
        if not isinstance(answer, list) or len(answer) != 2:
            return None  # the Sentinel does not know the master (yet)
        return answer[0].decode(), int(answer[1])
    finally:
        writer.close()


async def master_address(found: Sentinels) -> tuple[str, int]:
    """The master's address as the first Sentinel that knows it says, asked in turn, each
    bounded by SENTINEL_TIMEOUT_SECONDS."""
    errors = []
    for address in found.addresses:
        try:
            async with asyncio.timeout(SENTINEL_TIMEOUT_SECONDS):
                master = await _ask(address, found)
        except (OSError, TimeoutError) as exc:
            errors.append(f"{address[0]}:{address[1]}: {type(exc).__name__}")
            continue
        if master is not None:
            return master
        errors.append(f"{address[0]}:{address[1]}: no master named {found.master!r}")
    raise NoMaster("no Sentinel named a master (" + "; ".join(errors) + ")")


def redis_url_at(url: str, host: str) -> str:
    """`url` with its host replaced (django-redis names the Sentinels' master by host)."""
    options = _credentials(url)
    auth = ""
    if options["password"]:
        auth = f"{quote(options['username'] or '')}:{quote(options['password'])}@"
    return f"redis://{auth}{host}/{options['db']}"


def sentinel_broker_url(url: str, found: Sentinels) -> str:
    """Celery's (kombu's) way to say the same: one `sentinel://` address per Sentinel, the
    master's password and database on each; the master's name goes in the transport
    options."""
    options = _credentials(url)
    auth = f":{quote(options['password'])}@" if options["password"] else ""
    return ";".join(
        f"sentinel://{auth}{host}:{port}/{options['db']}" for host, port in found.addresses
    )


def broker_client(broker_url: str, **options: Any) -> redis.Redis | None:
    """A client of Celery's Redis broker (to read its queues' lengths), or None for a broker
    of another kind."""
    if broker_url.startswith(("redis://", "rediss://")):
        return redis.Redis.from_url(broker_url, **options)
    found = sentinels()
    if broker_url.startswith("sentinel://") and found is not None:
        first = broker_url.split(";")[0].replace("sentinel://", "redis://", 1)
        return sync_redis(redis_url_at(first, found.master), **options)
    return None
