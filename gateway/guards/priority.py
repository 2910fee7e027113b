"""The process's upstream slots, given out by priority.

A process serves at most GATEWAYZ_PROCESS_MAX_IN_FLIGHT requests at a provider at once
(what protects it: memory, sockets, the event loop's latency). When all are taken, a request
waits in a priority queue (its key's class: critical, high, default, low; first come first
served within a class) for at most GATEWAYZ_QUEUE_WAIT_SECONDS, and the queue holds at most
GATEWAYZ_QUEUE_MAX_WAITING requests: past either bound the answer is a 429 with
Retry-After, never an unbounded wait. While slots are free, taking one is a comparison and
an increment.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
from dataclasses import dataclass, field

from django.conf import settings

from accounts.limit_plans import DEFAULT_PRIORITY
from core.errors import GatewayError


def gateway_busy() -> GatewayError:
    return GatewayError(
        429,
        "Gatewayz is at capacity right now; please retry in a moment.",
        type="rate_limit_error",
        code="gateway_busy",
        headers=[(b"retry-after", b"1")],
    )


@dataclass(order=True, slots=True)
class _Waiter:
    priority: int
    seq: int
    ready: asyncio.Future[None] = field(compare=False)


class Slots:
    def __init__(self, capacity: int, max_waiting: int, wait_seconds: float) -> None:
        self.capacity = capacity
        self.max_waiting = max_waiting
        self.wait_seconds = wait_seconds
        self.in_flight = 0
        self.queue: list[_Waiter] = []
        self.waiting = 0  # live entries in `queue` (given-up ones are dropped lazily)
        self._seq = itertools.count()

    def try_acquire(self) -> bool:
        """Takes a free slot if there is one and nobody waits (no coroutine needed)."""
        if self.in_flight < self.capacity and not self.waiting:
            self.in_flight += 1
            return True
        return False

    async def acquire(self, priority: int = DEFAULT_PRIORITY) -> None:
        if self.try_acquire():
            return
        if self.waiting >= self.max_waiting:
            raise gateway_busy()
        waiter = _Waiter(priority, next(self._seq), asyncio.get_running_loop().create_future())
        heapq.heappush(self.queue, waiter)
        self.waiting += 1
        try:
            await asyncio.wait_for(asyncio.shield(waiter.ready), self.wait_seconds)
        except (TimeoutError, asyncio.CancelledError) as exc:
            if waiter.ready.done() and not waiter.ready.cancelled():
                self.release()  # handed a slot just as it gave up: pass it on
            else:
                waiter.ready.cancel()
                self.waiting -= 1
            if isinstance(exc, asyncio.CancelledError):
                raise  # the client went away
            raise gateway_busy() from None

    def release(self) -> None:
        """Frees a slot, or hands it straight to the first waiter in priority order."""
        while self.queue:
            waiter = heapq.heappop(self.queue)
            if not waiter.ready.done():
                self.waiting -= 1
                waiter.ready.set_result(None)
                return
        self.in_flight -= 1


_slots: Slots | None = None


def slots() -> Slots:
    global _slots
    if _slots is None:
        _slots = Slots(
            settings.GATEWAYZ_PROCESS_MAX_IN_FLIGHT,
            settings.GATEWAYZ_QUEUE_MAX_WAITING,
            settings.GATEWAYZ_QUEUE_WAIT_SECONDS,
        )
    return _slots
