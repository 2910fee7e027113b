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
from typing import Any, cast

import hiredis
from redis.connection import SSLConnection, parse_url

Arg = str | bytes | int | float


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

    def flush(self) -> None:
        if self.outgoing and self.transport is not None and self.lost is None:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            future, _ = self.waiting.popleft()
            if future.done():  # its caller was cancelled; the reply still had to be read
                continue
            if isinstance(reply, hiredis.ReplyError):
                future.set_exception(reply)
            else:
                future.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = RedisWireError(f"Redis connection lost: {exc or 'closed'}")
        while self.waiting:
            future, _ = self.waiting.popleft()
            if not future.done():
                future.set_exception(self.lost)


def _send(protocol: _Protocol, args: tuple[Arg, ...], now: bool = False) -> asyncio.Future[Any]:
    """Queues a command for the end of this event-loop turn's write, or (`now`) writes it,
    with what the turn had queued, at once."""
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
    if now:
        protocol.outgoing.append(packed)
        protocol.flush()  # a flush the turn had scheduled finds nothing left to write
    else:
        if not protocol.outgoing:
            loop.call_soon(protocol.flush)
        protocol.outgoing.append(packed)
    return future


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
    """

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.endpoint = Endpoint.from_url(url)
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._shas: dict[str, str] = {}
        # Checked a few times per timeout, so a stuck reply is noticed soon after it.
        self._watch_every = min(1.0, timeout / 4)

    async def call(self, *args: Arg) -> Any:
        protocol = self._protocol
        if protocol is None or protocol.lost is not None:
            protocol = await self._connect()
        return await _send(protocol, args)

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
            return _send(protocol, ("EVALSHA", sha, len(keys), *keys, *args), now=True)
        future = _send(protocol, ("EVAL", source, len(keys), *keys, *args), now=True)
        future.add_done_callback(lambda done: _loaded(done, protocol, sha))
        return future

    async def evalsha(self, source: str, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        """Runs a Lua script by its digest, loading it once if Redis does not know it
        (a fresh or restarted Redis)."""
        sha = self._sha(source)
        try:
            reply = await self.call("EVALSHA", sha, len(keys), *keys, *args)
        except hiredis.ReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
            await self.call("SCRIPT", "LOAD", source)
            reply = await self.call("EVALSHA", sha, len(keys), *keys, *args)
        if self._protocol is not None:
            self._protocol.scripts.add(sha)
        return reply

    def _sha(self, source: str) -> str:
        sha = self._shas.get(source)
        if sha is None:
            sha = self._shas[source] = hashlib.sha1(source.encode()).hexdigest()
        return sha

    async def close(self) -> None:
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
        protocol: _Protocol | None = None
        try:
            # The whole set-up is bounded: a server that accepts but never answers AUTH
            # must not hold every request forever.
            async with asyncio.timeout(self.timeout):
                if ep.unix_path:
                    _, protocol = await loop.create_unix_connection(_Protocol, ep.unix_path)
                else:
                    context = ssl.create_default_context() if ep.tls else None
                    _, protocol = await loop.create_connection(
                        _Protocol, ep.host, ep.port, ssl=context
                    )
                # Set up before anyone else may write on it: their commands must run in the
                # right database.
                if ep.password is not None:
                    auth = (ep.username, ep.password) if ep.username else (ep.password,)
                    await _send(protocol, ("AUTH", *auth))
                if ep.db:
                    await _send(protocol, ("SELECT", ep.db))
        except BaseException as exc:
            if protocol is not None and protocol.transport is not None:
                protocol.transport.close()
            if isinstance(exc, (OSError, TimeoutError)):
                raise RedisWireError(f"cannot connect to Redis: {exc}") from exc
            raise
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
