"""Settles requests off the response path: the client never waits for the ledger write,
and a failed write is retried until it lands (settlement is idempotent on request id)."""

from __future__ import annotations

import asyncio
import logging

from django.db import DataError

from billing.settlement import request_settle
from core.asyncdb import db_call
from core.outcome import RequestOutcome

log = logging.getLogger(__name__)
WORKERS = 4
MAX_BACKOFF_SECONDS = 30.0


class Settler:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[RequestOutcome] | None = None
        self._workers: list[asyncio.Task[None]] = []

    def start(self) -> None:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._workers = [asyncio.create_task(self._work()) for _ in range(WORKERS)]

    def submit(self, outcome: RequestOutcome) -> None:
        self.start()
        assert self._queue is not None
        self._queue.put_nowait(outcome)

    async def _work(self) -> None:
        assert self._queue is not None
        while True:
            outcome = await self._queue.get()
            try:
                await self._settle(outcome)
            finally:
                self._queue.task_done()

    async def _settle(self, outcome: RequestOutcome) -> None:
        backoff = 0.1
        while True:
            try:
                await db_call(request_settle, outcome=outcome)
                return
            except DataError:
                # Refused as data, it would be refused for ever, holding a worker (and all
                # that queues behind it): set aside, whole, in the log, for a person.
                log.exception(
                    "settling %s is refused by the database: %r", outcome.request_id, outcome
                )
                return
            except Exception:
                log.exception("settling %s failed; retrying in %.1fs", outcome.request_id, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)

    async def drain(self, timeout: float) -> None:  # noqa: ASYNC109  (a deadline at shutdown)
        """Waits for queued settlements (at shutdown), then stops the workers."""
        if self._queue is None:
            return
        try:
            await asyncio.wait_for(self._queue.join(), timeout)
        except TimeoutError:
            log.error("%d settlements still pending at shutdown", self._queue.qsize())
        for worker in self._workers:
            worker.cancel()
        self._queue = None
        self._workers = []


settler = Settler()
