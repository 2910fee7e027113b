"""Credit kept in the database, and rate limits counted in this process: the embedded
default, and the fallback of the Redis gate while Redis is unreachable (gateway.guards.credit)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine
from decimal import Decimal
from typing import Any

from django.conf import settings

from billing.services import credit_hold_create, credit_hold_delivered
from core.asyncdb import db_call
from core.outcome import RequestOutcome
from gateway.guards.limits import Admission, LocalLimiter
from gateway.guards.settlement import settler

log = logging.getLogger(__name__)


def hold_expiry() -> float:
    return time.time() + settings.GATEWAYZ_HOLD_TTL_SECONDS


# A settlement begun (`settle_begin`): awaiting it finishes it.
Settling = Coroutine[Any, Any, None]


async def settlement_done() -> None:
    """A settlement that had nothing left to wait for."""


_background: set[asyncio.Task[None]] = set()


def _done(task: asyncio.Task[None]) -> None:
    _background.discard(task)
    if not task.cancelled() and task.exception() is not None:
        log.debug("recording a delivery failed: %s", task.exception())


def in_background(work: Coroutine[Any, Any, None]) -> None:
    """Runs a journal record without waiting for it (kept referenced until done)."""
    task = asyncio.ensure_future(work)
    _background.add(task)
    task.add_done_callback(_done)


class DatabaseCredit:
    def __init__(self) -> None:
        self.limiter = LocalLimiter()

    async def admit(
        self,
        *,
        user_id: int,
        request_id: str,
        amount: Decimal,
        admission: Admission,
        journal: bytes = b"",
    ) -> None:
        self.limiter.admit(admission, hold_expiry())
        try:
            await db_call(
                credit_hold_create,
                user_id=user_id,
                request_id=request_id,
                amount=amount,
                journal=journal.decode(),
            )
        except BaseException:
            self.limiter.undo(admission)
            raise

    async def settle(self, outcome: RequestOutcome, admission: Admission | None) -> None:
        await self.settle_begin(outcome, admission)

    def settle_begin(self, outcome: RequestOutcome, admission: Admission | None) -> Settling:
        """Settles `outcome` (handed to the settler before this returns); see
        RedisCreditGate.settle_begin."""
        if admission is not None:
            tokens = outcome.prompt_tokens + outcome.completion_tokens
            self.limiter.settle(admission, tokens, outcome.cost)
        settler.submit(outcome)
        return settlement_done()

    def record_delivery(
        self, request_id: str, entry: bytes, admission: Admission, user_id: int = 0
    ) -> None:
        delivered = entry.decode()
        in_background(db_call(credit_hold_delivered, request_id=request_id, delivered=delivered))

    async def close(self) -> None:
        pass
