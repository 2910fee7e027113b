"""The hot path's Redis connection: one socket per process, commands multiplexed on it.

Redis answers the commands of one connection in the order they were sent, so every caller
queues its command and waits on a future that the reader resolves in order; the commands
queued in one event-loop turn go out in one write at its end. Calls made at the same moment
share writes and reads (they are pipelined by construction), with no pool checkout, no lock
and no per-call task. Parsing and packing are hiredis' C code.

Why not redis-py's asyncio client, which the rest of the project uses: on this machine it
spends ~140 CPU-µs per command (pool, retry wrapper, per-call connection locking) against
~30 µs here, and the hot path makes two calls per request (bench/README.md, "Choices").
It keeps the jobs that are not per request: the sync scripts, the cache. (The usage
consumer, per request in effect, has a RedisWire of its own.)
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import hiredis
from django.conf import settings
from prometheus_client import Counter
from redis.connection import SSLConnection, parse_url

from core.redis_topology import NoMaster, master_address, sentinels

Arg = str | bytes | int | float


REPLICA_WAITS_SHORT = Counter(
    "gatewayz_redis_replica_waits_short",
    "Scripts answered though fewer replicas than GATEWAYZ_REDIS_WAIT_REPLICAS confirmed them",
)


class RedisWireError(ConnectionError):
    """The connection failed or timed out: the command's outcome is unknown."""


@dataclass(frozen=True)
class Endpoint:
    host: str
    port: int
    db: int
    username: str | None
    password: str | None
    tls: bool
    unix_path: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        """Read as redis-py reads it (the rest of the project's Redis clients), so every
        client talks to the same server and database."""
        options = parse_url(url)
        supported = {"host", "port", "db", "username", "password", "connection_class", "path"}
        unsupported = set(options) - supported
        if unsupported:
            raise ValueError(f"Redis URL options not supported on the hot path: {unsupported}")
        unix_path = options.get("path")
        tls = options.get("connection_class") is SSLConnection
        return cls(
            options.get("host") or "127.0.0.1",
            int(options.get("port") or 6379),
            int(options.get("db") or 0),
            options.get("username"),
            options.get("password"),
            tls,
            unix_path,
        )


class Wire(Protocol):
    """What the hot path asks of its Redis connection: one server's (RedisWire) or a
    Cluster's (core.redis_cluster.ClusterWire)."""

    async def call(self, *args: Arg, durable: bool = False) -> Any: ...

    def call_now(self, *args: Arg) -> asyncio.Future[Any] | None: ...

    async def evalsha(self, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any: ...

    def evalsha_now(
        self, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> asyncio.Future[Any] | None: ...

    async def close(self) -> None: ...


class _Protocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.reader = hiredis.Reader()
        self.waiting: deque[tuple[asyncio.Future[Any], float]] = deque()
        self.transport: asyncio.Transport | None = None
        self.lost: Exception | None = None
        # Commands packed in this event-loop turn, written together at its end: one send
        # syscall for all of them instead of one each (the biggest cost left per command
        # under load, on a VM where syscalls are dear).
        self.outgoing: list[bytes] = []
        # Digests of the scripts Redis is known to hold since this connection opened (a
        # Redis that restarted comes back on a new connection, without them).
        self.scripts: set[str] = set()
        # ("WAIT", replicas, ms) when scripts must reach replicas before they are answered
        # (RedisWire, "Replicas"); the WAIT that follows this turn's scripts, if any.
        self.wait: tuple[Arg, ...] | None = None
        self.turn_wait: asyncio.Future[Any] | None = None

    def flush(self) -> None:
        turn_wait, self.turn_wait = self.turn_wait, None
        if self.transport is None or self.lost is not None:
            if turn_wait is not None and not turn_wait.done():
                turn_wait.set_exception(self.lost or RedisWireError("Redis connection lost"))
            self.outgoing.clear()
            return
        if turn_wait is not None:
            assert self.wait is not None
            # One WAIT after all of this turn's scripts: it answers once replicas hold them.
            self.outgoing.append(hiredis.pack_command(self.wait))  # type: ignore[arg-type]
            self.waiting.append((turn_wait, time.monotonic()))
        if self.outgoing:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        demoted = False
        while (reply := self.reader.gets()) is not False:
            future, _ = self.waiting.popleft()
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("READONLY"):
                # A replica: the master this connection reached was demoted by a failover.
                # Dropped below, so that the next call asks the Sentinels again.
                demoted = True
            if future.done():  # its caller was cancelled; the reply still had to be read
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)
        if demoted and self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisWireError(f"Redis connection lost: {exc or 'closed'}")
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


def _send(
    protocol: _Protocol, args: tuple[Arg, ...], now: bool = False, durable: bool = False
) -> asyncio.Future[Any]:
    """Queues a command for the end of this event-loop turn's write, or (`now`) writes it,
    with what the turn had queued, at once. `durable`: answered only once the turn's WAIT
    says replicas hold it too (when the connection asks for replicas)."""
    if protocol.lost is not None:
        raise protocol.lost
    assert protocol.transport is not None
    # Packed first: an argument it cannot pack must fail before a reply is awaited, or every
    # later reply would go to the wrong caller. (hiredis' stub types the tuple as one element;
    # it takes any number.)
    packed = hiredis.pack_command(args)  # type: ignore[arg-type]
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    protocol.waiting.append((future, time.monotonic()))
    if durable and protocol.wait is not None:
        if protocol.turn_wait is None:
            protocol.turn_wait = loop.create_future()
        future = _after_wait(future, protocol.turn_wait, int(protocol.wait[1]))
    if now:
        protocol.outgoing.append(packed)
        protocol.flush()  # a flush the turn had scheduled finds nothing left to write
    else:
        if not protocol.outgoing:
            loop.call_soon(protocol.flush)
        protocol.outgoing.append(packed)
    return future


def _after_wait(
    command: asyncio.Future[Any], wait: asyncio.Future[Any], replicas: int
) -> asyncio.Future[Any]:
    """The command's reply, given once the WAIT after it has answered too. A WAIT that ran
    out of time with fewer replicas is counted and the reply given (Redis' own
    min-replicas-to-write refuses writes once replicas are gone for long); a connection lost
    before the WAIT answered leaves the outcome unknown, as any lost reply does."""
    answered = asyncio.get_running_loop().create_future()

    def finish(_: asyncio.Future[Any]) -> None:
        if answered.done() or not (command.done() and wait.done()):
            return
        if command.cancelled() or wait.cancelled():
            answered.cancel()
            return
        failed, wait_failed = command.exception(), wait.exception()  # both retrieved
        error = failed or wait_failed
        if error is not None:
            answered.set_exception(error)
            return
        if int(wait.result()) < replicas:
            REPLICA_WAITS_SHORT.inc()
        answered.set_result(command.result())

    command.add_done_callback(finish)
    wait.add_done_callback(finish)
    return answered


def _retrieved(done: asyncio.Future[Any]) -> None:
    """A reply nobody awaits (ASKING's): its error, if any, is read so it is not reported
    as lost; the command after it fails on its own."""
    if not done.cancelled():
        done.exception()


def _loaded(done: asyncio.Future[Any], protocol: _Protocol, sha: str) -> None:
    """After an EVAL: its script is held by Redis, unless the command failed for good."""
    if done.cancelled():
        return
    error = done.exception()
    if error is None or isinstance(error, hiredis.ReplyError):  # a script error still loaded it
        protocol.scripts.add(sha)


class RedisWire:
    """Multiplexed commands over one connection, reconnected on the next call after a loss.

    `timeout` bounds how long a reply may take: past it the connection is dropped (failing
    every command on it), since a reply that late means Redis or the network is stuck.

    Replicas: Redis replicates asynchronously, so a master that dies may take its last
    writes with it, and a failover would forget a credit hold or a settlement the gateway
    had acted on (an overspend, a lost usage record). With GATEWAYZ_REDIS_WAIT_REPLICAS,
    every script (the money writes) is answered only after a WAIT for that many replicas,
    sent once after all the scripts of an event-loop turn: group commit, one round trip to
    a replica per batch, not per request. Behind Sentinels the master is asked of them at
    each connection (core.redis_topology) and a connection that meets READONLY is dropped.
    """

    def __init__(
        self, url: str, *, timeout: float = 5.0, address: tuple[str, int] | None = None
    ) -> None:
        self.endpoint = Endpoint.from_url(url)
        self.timeout = timeout
        # A Cluster's node (core.redis_cluster): this address, not REDIS_URL's or the
        # Sentinels' master.
        self.address = address
        replicas = settings.GATEWAYZ_REDIS_WAIT_REPLICAS
        self._wait: tuple[Arg, ...] | None = (
            ("WAIT", replicas, settings.GATEWAYZ_REDIS_WAIT_MS) if replicas else None
        )
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._shas: dict[str, str] = {}
        # Checked a few times per timeout, so a stuck reply is noticed soon after it.
        self._watch_every = min(1.0, timeout / 4)

    @property
    def connected(self) -> bool:
        return self._protocol is not None and self._protocol.lost is None

    async def call(self, *args: Arg, durable: bool = False, asking: bool = False) -> Any:
        """`asking`: ASKING goes just before the command, adjacent on the connection (a
        Cluster's slot being migrated, core.redis_cluster)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        if asking:
            _send(protocol, ("ASKING",)).add_done_callback(_retrieved)
        return await _send(protocol, args, durable=durable)

    def call_now(self, *args: Arg) -> asyncio.Future[Any] | None:
        """A command written to the socket before this returns (see `evalsha_now`); None if
        not connected (use `call`)."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return None
        return _send(protocol, args, now=True)

    def evalsha_now(
        self, source: str, keys: Sequence[Arg], args: Sequence[Arg]
    ) -> asyncio.Future[Any] | None:
        """EVALSHA written to the socket before this returns (with the commands this turn had
        queued, in order), not at the end of the turn: once it returns, the command reaches
        Redis even if this process dies. None if not connected (use `evalsha`). Its future
        fails with NOSCRIPT only if Redis forgot the script on this connection (SCRIPT FLUSH):
        on a new connection the script goes whole (EVAL, which loads it too), so the first
        command after Redis restarted is not lost to a NOSCRIPT."""
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            return None
        sha = self._sha(source)
        if sha in protocol.scripts:
            command: tuple[Arg, ...] = ("EVALSHA", sha, len(keys), *keys, *args)
            return _send(protocol, command, now=True, durable=True)
        future = _send(protocol, ("EVAL", source, len(keys), *keys, *args), now=True, durable=True)
        future.add_done_callback(lambda done: _loaded(done, protocol, sha))
        return future

    async def evalsha(
        self, source: str, keys: Sequence[Arg], args: Sequence[Arg], *, asking: bool = False
    ) -> Any:
        """Runs a Lua script by its digest, loading it once if Redis does not know it
        (a fresh or restarted Redis)."""
        sha = self._sha(source)
        command = ("EVALSHA", sha, len(keys), *keys, *args)
        try:
            reply = await self.call(*command, durable=True, asking=asking)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.call("SCRIPT", "LOAD", source)
            reply = await self.call(*command, durable=True, asking=asking)
        if self._protocol is not None:
            self._protocol.scripts.add(sha)
        return reply

    def _sha(self, source: str) -> str:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest()
        return sha

    async def close(self) -> None:
        self.drop()

    def drop(self) -> None:
        """Closes the connection, without waiting on anything."""
        if self._connecting is not None:
            self._connecting.cancel()
            self._connecting = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._protocol is not None and self._protocol.transport is not None:
            self._protocol.transport.close()
        self._protocol = None

    async def _connect(self) -> _Protocol:
        # Concurrent callers after a loss share one reconnection.
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            self._connecting.add_done_callback(self._connected)
        return await asyncio.shield(self._connecting)

    def _connected(self, attempt: asyncio.Future[_Protocol]) -> None:
        if self._connecting is attempt:
            self._connecting = None
        if not attempt.cancelled():
            attempt.exception()  # retrieved here too: a failure nobody awaited is not lost

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        ep = self.endpoint
        found = sentinels()
        protocol: _Protocol | None = None
        try:
            # The whole set-up is bounded: a server that accepts but never answers AUTH
            # must not hold every request forever.
            async with asyncio.timeout(self.timeout):
                if self.address is not None:
                    host, port = self.address
                elif found:
                    host, port = await master_address(found)
                else:
                    host, port = ep.host, ep.port
                if ep.unix_path and not found and self.address is None:
                    _, protocol = await loop.create_unix_connection(_Protocol, ep.unix_path)
                else:
                    context = ssl.create_default_context() if ep.tls else None
                    _, protocol = await loop.create_connection(_Protocol, host, port, ssl=context)
                # Set up before anyone else may write on it: their commands must run in the
                # right database.
                if ep.password is not None:
                    auth = (ep.username, ep.password) if ep.username else (ep.password,)
                    await _send(protocol, ("AUTH", *auth))
                if ep.db:
                    await _send(protocol, ("SELECT", ep.db))
                if found and self.address is None:
                    # The Sentinels may name a master that has just been demoted (they
                    # learn of a failover a moment apart): only a master will do.
                    role = await _send(protocol, ("ROLE",))
                    if role[0] != b"master":
                        raise NoMaster(f"{host}:{port} is a {role[0].decode()}, not the master")
        except BaseException as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.close()
            if isinstance(exc, (OSError, TimeoutError)):  # NoMaster is a ConnectionError
                raise RedisWireError(f"cannot connect to Redis: {exc}") from exc
            raise
        protocol.wait = self._wait
        self._protocol = protocol
        if self._watchdog is None:
            self._watchdog = loop.call_later(self._watch_every, self._watch)
        return protocol

    def _watch(self) -> None:
        """Drops the connection if its oldest command waits past the timeout."""
        protocol = self._protocol
        if protocol is not None and protocol.waiting and protocol.transport is not None:
            _, sent_at = protocol.waiting[0]
            if time.monotonic() - sent_at > self.timeout:
                protocol.transport.abort()
        self._watchdog = asyncio.get_running_loop().call_later(self._watch_every, self._watch)
