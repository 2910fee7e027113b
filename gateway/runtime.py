"""Per-process background work of the gateway: started by the first request (daphne sends no
lifespan events), stopped by the ASGI lifespan shutdown where the server sends one."""

from __future__ import annotations

import asyncio
import gc

from django.conf import settings

from gateway.endpoints.responses_state import recent
from gateway.guards.breaker_board import board_close
from gateway.guards.credit import credit_gate_close
from gateway.guards.settlement import settler
from gateway.http import Receive, Scope, Send
from gateway.invalidation import InvalidationWatcher
from gateway.keycache import key_cache
from gateway.relay.upstream import upstream_client_close

SHUTDOWN_DRAIN_SECONDS = 20.0

# The cyclic collector's first threshold (CPython's default is 700). See `gc_tune`.
GC_YOUNG_THRESHOLD = 10_000

_tasks: list[asyncio.Task[None]] = []


def gc_tune() -> None:
    """Takes the cyclic garbage collector off the hot path; called once, at import.

    A served request leaves no reference cycles behind (freed by reference counting alone),
    yet under load CPython's defaults spent ~7% of the gateway's CPU in the collector
    (measured with gc.callbacks, bench/ load at 16 connections): the young generation filled
    up with the live objects of requests in flight every ~700 allocations, the survivors
    were promoted, and every ~2 s a full collection walked all ~100,000 objects of Django,
    the catalog and the imported modules: ~80 ms each, a stall of every request in flight.
    So: what start-up made is frozen (never walked again; it lives as long as the process),
    and the young generation's threshold is raised, which a request path that allocates
    and frees as it goes never reaches; cycles that error paths make are still collected.

    Inference workers only (`config.asgi_inference`): Django's ASGI handler runs each web
    request's sync code in a thread of its own, and the database connection that thread
    leaves is closed only when the collector frees it (a reference cycle), so web workers
    keep CPython's defaults (with this, the test suite's web servers ran out of Postgres
    connections).
    """
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GC_YOUNG_THRESHOLD, older, oldest)


def runtime_ensure_started() -> None:
    if _tasks:
        return
    _tasks.append(asyncio.create_task(InvalidationWatcher().run()))
    if settings.REDIS_URL:
        from gateway.usage_consumer import UsageConsumer

        _tasks.append(asyncio.create_task(UsageConsumer(settings.REDIS_URL).run()))
    settler.start()


async def runtime_stop() -> None:
    await settler.drain(SHUTDOWN_DRAIN_SECONDS)
    for task in _tasks:
        task.cancel()
    _tasks.clear()
    await credit_gate_close()
    await board_close()
    await key_cache.close()
    await upstream_client_close()
    await recent.close()


async def lifespan(scope: Scope, receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            runtime_ensure_started()
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await runtime_stop()
            await send({"type": "lifespan.shutdown.complete"})
            return
