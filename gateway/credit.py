"""How the hot path reserves and settles credit: in Redis when REDIS_URL is set (one round
trip each, no thread hop), else in the database (the embedded default). Same contract."""

from __future__ import annotations

import logging
import time
from decimal import Decimal

import orjson
from django.conf import settings

from billing.redis_credit import RedisCredit
from billing.services import InsufficientCredit, credit_avail_seed_from_ledger, credit_hold_create
from config.asyncdb import db_call
from gateway.settlement import settler
from monitoring.services import RequestOutcome

log = logging.getLogger(__name__)


class DatabaseCredit:
    async def admit(self, *, user_id: int, request_id: str, amount: Decimal) -> None:
        await db_call(credit_hold_create, user_id=user_id, request_id=request_id, amount=amount)

    async def settle(self, outcome: RequestOutcome) -> None:
        settler.submit(outcome)

    async def close(self) -> None:
        pass


class RedisCreditGate:
    def __init__(self, url: str) -> None:
        self.redis = RedisCredit(url)

    async def admit(self, *, user_id: int, request_id: str, amount: Decimal) -> None:
        expires_at = time.time() + settings.GATEWAYZ_HOLD_TTL_SECONDS
        for _ in range(2):
            result = await self.redis.admit(
                user_id=user_id, request_id=request_id, amount=amount, expires_at=expires_at
            )
            if result == 1:
                return
            if result == 0:
                raise InsufficientCredit
            await db_call(
                credit_avail_seed_from_ledger, user_id=user_id
            )  # first request of this user here
        raise InsufficientCredit

    async def settle(self, outcome: RequestOutcome) -> None:
        event = outcome.as_event()
        try:
            await self.redis.settle(
                user_id=outcome.user_id,
                request_id=outcome.request_id,
                cost=outcome.cost,
                event=orjson.dumps(event),
            )
        except Exception:
            # Redis is unreachable: settle in the database instead (the Redis hold is
            # released by expiry); the request is still charged and logged exactly once.
            log.exception(
                "settling %s in Redis failed; settling in the database", outcome.request_id
            )
            settler.submit(outcome)

    async def close(self) -> None:
        await self.redis.close()


CreditGate = DatabaseCredit | RedisCreditGate
_gate: CreditGate | None = None


def credit_gate() -> CreditGate:
    global _gate
    if _gate is None:
        _gate = RedisCreditGate(settings.REDIS_URL) if settings.REDIS_URL else DatabaseCredit()
    return _gate


async def credit_gate_close() -> None:
    global _gate
    if _gate is not None:
        await _gate.close()
        _gate = None
