"""Calls of one Redis script are sent as soon as nothing else is on the wire, and calls that
arrive while a send is under way go together in the next one, as one pipeline: alone, a call
costs a plain round trip; under load, many calls share one write and one read instead of a
pool checkout and a round trip each."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis

Call = tuple[list[Any], list[Any], "asyncio.Future[Any]"]


class ScriptBatcher:
    def __init__(self, client: aioredis.Redis, source: str) -> None:
        self.client = client
        self.script = client.register_script(source)
        self._pending: list[Call] = []
        self._busy = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        if self._busy:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._pending.append((keys, args, future))
            return await future
        self._busy = True
        try:
            return await self.script(keys=keys, args=args)
        finally:
            self._next()

    def _next(self) -> None:
        """Sends what queued up meanwhile, or goes idle."""
        if not self._pending:
            self._busy = False
            return
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._send(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            pipe = self.client.pipeline(transaction=False)
            for keys, args, _ in batch:
                await self.script(keys=keys, args=args, client=pipe)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            results = [exc] * len(batch)
        finally:
            self._next()
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
