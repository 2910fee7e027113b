"""Per-process background work of the gateway: started by the first request (daphne sends no
lifespan events), stopped by the ASGI lifespan shutdown where the server sends one."""

from __future__ import annotations

import asyncio

from django.conf import settings

from gateway.credit import credit_gate_close
from gateway.http import Receive, Scope, Send
from gateway.invalidation import InvalidationWatcher
from gateway.settlement import settler
from gateway.upstream import upstream_client_close

SHUTDOWN_DRAIN_SECONDS = 20.0

_tasks: list[asyncio.Task[None]] = []


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
    await upstream_client_close()


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
