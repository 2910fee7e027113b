"""The circuit breakers' board: one breaker (gateway.guards.breaker_rules) per provider × model,
shared by every process.

A breaker's state is kept in Redis when REDIS_URL is set (the hash `gwz:cb`, one field per
deployment that has failed lately), else in the process. A healthy deployment has no field,
and its successes cost nothing: only failures, and the successes of a deployment that failed
lately, are written. Each process reads the whole hash at most once a second (it is as small
as the set of troubled deployments) and sees its own writes at once: routing waits on Redis
once a second at most, never per request, to learn whether a deployment is open.

Writes are compare-and-set on the field's whole value, so two processes recording at once
both count. While Redis is unreachable (core.redis_link) each process keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict

import orjson
from django.conf import settings

from core.redis_cluster import hot_wire
from core.redis_link import redis_link
from core.redis_wire import RedisWireError
from gateway.guards.breaker_rules import (
    CLOSED,
    Breaker,
    policy,
    probe_claimed,
    probe_returned,
    transition,
)

log = logging.getLogger(__name__)

HASH = "gwz:cb"
REFRESH_SECONDS = 1.0
VERDICT_POLL_SECONDS = 0.05


def _dump(b: Breaker) -> bytes:
    return b"" if b.healthy else orjson.dumps(asdict(b))


def breaker_load(raw: bytes | str | None) -> Breaker:
    return Breaker(**orjson.loads(raw)) if raw else Breaker()


# KEYS: the hash   ARGV: field, the value it must still have ('' = absent), the new value
# ('' = delete) -> {1} written; {0, current} it had changed: here is its value now
COMPARE_AND_SET = """
local current = redis.call('HGET', KEYS[1], ARGV[1]) or ''
if current ~= ARGV[2] then return {0, current} end
if ARGV[3] == '' then redis.call('HDEL', KEYS[1], ARGV[1])
else redis.call('HSET', KEYS[1], ARGV[1], ARGV[3]) end
return {1}
"""

Change = Callable[[Breaker], Breaker | None]  # None: leave it as it is


class Board:
    """This process's view of every breaker, and the one way to change one."""

    def __init__(self, redis_url: str = "") -> None:
        timeout = settings.GATEWAYZ_REDIS_TIMEOUT_SECONDS
        self.wire = hot_wire(redis_url, timeout=timeout) if redis_url else None
        self.raw: dict[str, bytes] = {}  # troubled deployments only
        self.breakers: dict[str, Breaker] = {}
        self.pending_successes: dict[str, int] = {}
        self.refreshed_at = 0.0
        self._refreshing: asyncio.Task[None] | None = None
        # Set (and replaced) whenever this process's view changes: wakes the requests that
        # wait for a probe's verdict.
        self._changed = asyncio.Event()

    def get(self, key: str) -> Breaker | None:
        return self.breakers.get(key)

    def stale(self, max_age: float = REFRESH_SECONDS) -> bool:
        return self.wire is not None and time.monotonic() - self.refreshed_at > max_age

    async def fresh(self, max_age: float = REFRESH_SECONDS) -> None:
        """Makes sure the view is at most a second old: at most one read of Redis per
        second per process, shared by the requests that arrive meanwhile. (Callers on the
        hot path check `stale()` first: most requests need not even start a coroutine.)"""
        if not self.stale(max_age):
            return
        if self._refreshing is None or self._refreshing.done():
            self.refreshed_at = time.monotonic()
            self._refreshing = asyncio.ensure_future(self.refresh())
        await asyncio.shield(self._refreshing)

    async def refresh(self) -> None:
        """Reads every breaker from Redis, after writing the successes batched since.
        While Redis is unreachable the view is this process's own (kept and changed here)."""
        if self.wire is None or not redis_link.up:
            return
        try:
            pending, self.pending_successes = self.pending_successes, {}
            for key, count in pending.items():
                await self._record(key, True, count, "")
            fields = await self.wire.call("HGETALL", HASH)
            raw = dict(zip(fields[::2], fields[1::2], strict=True))
            self.raw = {k.decode(): v for k, v in raw.items()}
            self.breakers = {k: breaker_load(v) for k, v in self.raw.items()}
            self.refreshed_at = time.monotonic()
            self._announce()
        except RedisWireError as exc:
            redis_link.lost(exc)
        except Exception:
            log.exception("reading the circuit breakers failed; keeping the last view")

    # Writing.
    async def update(self, key: str, change: Change) -> Breaker | None:
        """Applies `change` to the breaker atomically; returns it as changed, or None when
        `change` declined."""
        expected = self.raw.get(key, b"")
        for _ in range(20):  # each retry means another process wrote in between
            current = breaker_load(expected)
            changed = change(current)
            if changed is None:
                if expected != self.raw.get(key, b""):  # learnt from a refused write
                    self._view(key, expected, current)
                return None
            value = _dump(changed)
            written = True
            if self.wire is not None and redis_link.up:
                try:
                    reply = await self.wire.evalsha(COMPARE_AND_SET, [HASH], [key, expected, value])
                except RedisWireError as exc:
                    redis_link.lost(exc)  # and the change is this process's own
                else:
                    written = reply[0] == 1
                    if not written:
                        expected = reply[1]
                        continue
            self._view(key, value, changed)
            return changed
        raise RuntimeError(f"the breaker {key} kept changing under us")

    async def _record(self, key: str, ok: bool, count: int, error: str) -> None:
        p, now = policy(), time.time()
        await self.update(key, lambda b: transition(b, ok, count, now, p, error))

    async def record(self, key: str, ok: bool, error: str = "") -> None:
        """One outcome of a request to the deployment. A success of a healthy deployment
        writes nothing; of one with failures in its window it is batched to the next
        refresh, unless it changes the state (ends a run of failures, or closes)."""
        breaker = self.breakers.get(key)
        if ok and (breaker is None or breaker.healthy):
            return
        quiet = breaker is not None and breaker.state == CLOSED and not breaker.consecutive
        if ok and quiet and self.wire is not None:
            self.pending_successes[key] = self.pending_successes.get(key, 0) + 1
            return
        try:
            await self._record(key, ok, 1, error)
        except Exception:
            log.exception("recording an outcome of %s failed", key)

    def _view(self, key: str, value: bytes, breaker: Breaker) -> None:
        if value:
            self.raw[key], self.breakers[key] = value, breaker
        else:
            self.raw.pop(key, None)
            self.breakers.pop(key, None)
        self._announce()

    def _announce(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def verdict(self, keys: list[str], until: float) -> None:
        """Waits until a probe of one of `keys` has reported (here, or in another process:
        Redis is reread every VERDICT_POLL_SECONDS meanwhile), or until `until`
        (monotonic). Only requests that found every deployment probing wait here."""
        while (left := until - time.monotonic()) > 0:
            now = time.time()
            if not all((b := self.breakers.get(k)) is not None and b.probing(now) for k in keys):
                return
            try:
                await asyncio.wait_for(self._changed.wait(), min(VERDICT_POLL_SECONDS, left))
            except TimeoutError:
                await self.fresh(max_age=VERDICT_POLL_SECONDS)

    async def return_probe(self, key: str) -> None:
        try:
            await self.update(key, probe_returned)
        except Exception:
            log.exception("returning a probe of %s failed", key)

    async def claim_probe(self, key: str) -> bool:
        p, now = policy(), time.time()
        try:
            return await self.update(key, lambda b: probe_claimed(b, now, p)) is not None
        except Exception:
            log.exception("claiming a probe of %s failed", key)
            return False

    async def close(self) -> None:
        if self.wire is not None:
            await self.wire.close()


_board: Board | None = None


def board() -> Board:
    global _board
    if _board is None:
        _board = Board(settings.REDIS_URL)
    return _board


async def board_close() -> None:
    global _board
    if _board is not None:
        await _board.close()
        _board = None


def board_forget(keys: list[str]) -> None:
    """Drops `keys` from this process's board, if it has one (staff reset them elsewhere)."""
    if _board is not None:
        for key in keys:
            _board.breakers.pop(key, None)
            _board.raw.pop(key, None)
