"""Per-process background work of the gateway: started by the first request (daphne sends no
lifespan events), stopped by the ASGI lifespan shutdown where the server sends one."""

from __future__ import annotations

import asyncio

from gateway.http import Receive, Scope, Send
from gateway.invalidation import InvalidationWatcher
from gateway.settlement import settler
from gateway.upstream import upstream_client_close

SHUTDOWN_DRAIN_SECONDS = 20.0

_watcher_task: asyncio.Task[None] | None = None


def runtime_ensure_started() -> None:
    global _watcher_task
    if _watcher_task is None or _watcher_task.done():
        _watcher_task = asyncio.create_task(InvalidationWatcher().run())
        settler.start()


async def runtime_stop() -> None:
    global _watcher_task
    await settler.drain(SHUTDOWN_DRAIN_SECONDS)
    if _watcher_task is not None:
        _watcher_task.cancel()
        _watcher_task = None
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
