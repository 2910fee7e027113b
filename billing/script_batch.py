"""Calls of one Redis script made in the same event-loop turn go out as one pipeline: one
write and one read for all of them, instead of a pool checkout and a round trip each. Under
load several requests admit or settle in the same turn; alone, a call costs one scheduling
hop more than a direct call."""

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
        self._running: set[asyncio.Task[None]] = set()

    async def __call__(self, keys: list[Any], args: list[Any]) -> Any:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._pending.append((keys, args, future))
        if len(self._pending) == 1:
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        batch, self._pending = self._pending, []
        task = asyncio.create_task(self._send(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)

    async def _send(self, batch: list[Call]) -> None:
        try:
            if len(batch) == 1:
                keys, args, _ = batch[0]
                results: list[Any] = [await self.script(keys=keys, args=args)]
            else:
                pipe = self.client.pipeline(transaction=False)
                for keys, args, _ in batch:
                    await self.script(keys=keys, args=args, client=pipe)
                results = await pipe.execute(raise_on_error=False)
        except Exception as exc:
            results = [exc] * len(batch)
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)
