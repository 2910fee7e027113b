"""Circuit breakers: one per provider × model, shared by every process.

A breaker's state is kept in Redis when REDIS_URL is set (the hash `gwz:cb`, one field per
deployment that has failed lately), else in the process. A healthy deployment has no field,
and its successes cost nothing: only failures, and the successes of a deployment that failed
lately, are written. Each process reads the whole hash at most once a second (it is as small
as the set of troubled deployments) and sees its own writes at once: routing waits on Redis
once a second at most, never per request, to learn whether a deployment is open.

The rules live in one pure function, `transition`, whichever the store:
- closed → open after `failures` consecutive failures, or when the failures in the current
  window reach `error_rate` of at least `min_requests` requests;
- open → half-open after the cooldown: one request, claimed by one process, probes;
- half-open → closed after `successes` probes succeed; → open again on a failure, with the
  cooldown doubled, up to `max_cooldown_seconds`.
Writes are compare-and-set on the field's whole value, so two processes recording at once
both count. While Redis is unreachable (core.redis_link) each process keeps its own.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

import orjson
from django.conf import settings

from billing.redis_credit import sync_client
from core.redis_link import redis_link
from core.redis_wire import RedisWire, RedisWireError

log = logging.getLogger(__name__)

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
HASH = "gwz:cb"
REFRESH_SECONDS = 1.0
VERDICT_POLL_SECONDS = 0.05


@dataclass(frozen=True, slots=True)
class Policy:
    failures: int = 5
    window_seconds: float = 60.0
    min_requests: int = 20
    error_rate: float = 0.5
    cooldown_seconds: float = 15.0
    max_cooldown_seconds: float = 600.0
    successes: int = 2
    probe_seconds: float = 30.0  # a probe that has not reported by then is presumed lost


def policy() -> Policy:
    return Policy(**settings.GATEWAYZ_BREAKER)  # type: ignore[arg-type]


@dataclass(frozen=True, slots=True)
class Breaker:
    state: str = CLOSED
    consecutive: int = 0  # failures in a row
    window_start: float = 0.0
    requests: int = 0  # in the current window
    failures: int = 0  # in the current window
    opened_at: float = 0.0
    cooldown: float = 0.0
    probe_until: float = 0.0  # half-open: a probe is out until then
    probe_successes: int = 0
    last_error: str = ""

    @property
    def healthy(self) -> bool:
        return self.state == CLOSED and not self.consecutive and not self.failures

    def retry_at(self) -> float:
        return self.opened_at + self.cooldown

    def routable(self, now: float) -> bool | None:
        """True: route to it; False: skip it; None: only as a probe (claim one first)."""
        if self.state == CLOSED:
            return True
        if self.state == OPEN:
            return None if now >= self.retry_at() else False
        return None if now >= self.probe_until else False

    def probing(self, now: float) -> bool:
        """Half-open with a probe out: its verdict is due within moments, so a request
        may wait for it rather than be refused."""
        return self.state == HALF_OPEN and now < self.probe_until


def transition(b: Breaker, ok: bool, count: int, now: float, p: Policy, error: str) -> Breaker:
    """`count` outcomes, all successes or all failures, recorded at `now`."""
    if now - b.window_start >= p.window_seconds:
        b = replace(b, window_start=now, requests=0, failures=0)
    b = replace(b, requests=b.requests + count, failures=b.failures + (0 if ok else count))
    if ok:
        b = replace(b, consecutive=0)
        if b.state == HALF_OPEN:
            b = replace(b, probe_successes=b.probe_successes + count, probe_until=0.0)
            if b.probe_successes >= p.successes:
                b = Breaker()  # closed, its history forgiven
        return b
    b = replace(b, consecutive=b.consecutive + count, last_error=error[:200])
    if b.state == HALF_OPEN:
        cooldown = min(max(b.cooldown, p.cooldown_seconds) * 2, p.max_cooldown_seconds)
        return _opened(b, now, cooldown)
    if b.state == CLOSED and (
        b.consecutive >= p.failures
        or (b.requests >= p.min_requests and b.failures >= p.error_rate * b.requests)
    ):
        return _opened(b, now, p.cooldown_seconds)
    return b  # open already: late reports of requests sent before it opened


def _opened(b: Breaker, now: float, cooldown: float) -> Breaker:
    log.warning("circuit opened for %.0f s after: %s", cooldown, b.last_error)
    return replace(b, state=OPEN, opened_at=now, cooldown=cooldown, probe_successes=0)


def probe_claimed(b: Breaker, now: float, p: Policy) -> Breaker | None:
    """The breaker with a probe out, or None when no probe may go now. The successes of
    earlier probes still count: half-open closes after `successes` probes in a row."""
    if b.routable(now) is not None:
        return None
    successes = b.probe_successes if b.state == HALF_OPEN else 0
    return replace(b, state=HALF_OPEN, probe_until=now + p.probe_seconds, probe_successes=successes)


def probe_returned(b: Breaker) -> Breaker | None:
    """A probe that said nothing of the deployment's health (the provider asked us to slow
    down, the request itself was refused, the customer's own key was used): the next
    request may probe at once instead of waiting `probe_seconds` for it."""
    if b.state != HALF_OPEN or not b.probe_until:
        return None
    return replace(b, probe_until=0.0)


def breaker_key(provider: str, model: str) -> str:
    return f"{provider}|{model}"


def _dump(b: Breaker) -> bytes:
    return b"" if b.healthy else orjson.dumps(asdict(b))


def _load(raw: bytes | str | None) -> Breaker:
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
        self.wire = RedisWire(redis_url, timeout=timeout) if redis_url else None
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
            self.breakers = {k: _load(v) for k, v in self.raw.items()}
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
            current = _load(expected)
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


def breaker_view(key: str, b: Breaker, now: float) -> dict[str, Any]:
    """A breaker as the monitoring API shows it."""
    provider, model = key.split("|", 1)
    return {
        "provider": provider,
        "model": model,
        "state": b.state,
        "consecutive_failures": b.consecutive,
        "window_requests": b.requests,
        "window_failures": b.failures,
        "opened_at": b.opened_at or None,
        "retry_at": b.retry_at() if b.state != CLOSED else None,
        "probing": b.state == HALF_OPEN and now < b.probe_until,
        "last_error": b.last_error,
    }


# The staff side (monitoring API, admin), in sync code: the shared state in Redis, or this
# process's own when there is no Redis (the embedded default serves everything in one).
def breakers_list() -> dict[str, Breaker]:
    if not settings.REDIS_URL:
        return dict(board().breakers)
    raw: dict[bytes, bytes] = sync_client().hgetall(HASH)  # type: ignore[assignment]
    return {k.decode(): _load(v) for k, v in raw.items()}


def breakers_reset(provider: str) -> list[str]:
    """Closes every breaker of `provider`; every process sees it within a second."""
    mine = [k for k in breakers_list() if k.split("|", 1)[0] == provider]
    if settings.REDIS_URL and mine:
        sync_client().hdel(HASH, *mine)
    if _board is not None:  # this process serves requests too: it knows at once
        for key in mine:
            _board.breakers.pop(key, None)
            _board.raw.pop(key, None)
    log.warning("circuit breakers of %s reset: %s", provider, ", ".join(mine) or "none open")
    return mine
