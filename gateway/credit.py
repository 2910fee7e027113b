"""How the hot path reserves and settles credit, and counts the request in its rate limits:
in Redis when REDIS_URL is set (one round trip each, no thread hop, limits exact across
processes), else in the database and in-process limits (the embedded default). Same
contract: a request is counted in its limits only if its credit hold succeeded."""

from __future__ import annotations

import logging
import time
from decimal import Decimal
from functools import partial

import orjson
from django.conf import settings

from billing.redis_credit import RedisCredit
from billing.redis_wire import RedisWireError
from billing.services import InsufficientCredit, credit_avail_seed_from_ledger, credit_hold_create
from config.asyncdb import db_call
from gateway.limits import Admission, LocalLimiter
from gateway.settlement import settler
from monitoring.services import RequestOutcome

log = logging.getLogger(__name__)


def _expiry() -> float:
    return time.time() + settings.GATEWAYZ_HOLD_TTL_SECONDS


class DatabaseCredit:
    def __init__(self) -> None:
        self.limiter = LocalLimiter()

    async def admit(
        self, *, user_id: int, request_id: str, amount: Decimal, admission: Admission
    ) -> None:
        self.limiter.admit(admission, _expiry())
        try:
            await db_call(credit_hold_create, user_id=user_id, request_id=request_id, amount=amount)
        except BaseException:
            self.limiter.undo(admission)
            raise

    async def settle(self, outcome: RequestOutcome, admission: Admission | None) -> None:
        if admission is not None:
            tokens = outcome.prompt_tokens + outcome.completion_tokens
            self.limiter.settle(admission, tokens, outcome.cost)
        settler.submit(outcome)

    async def close(self) -> None:
        pass


class RedisCreditGate:
    def __init__(self, url: str) -> None:
        self.redis = RedisCredit(url)

    async def admit(
        self, *, user_id: int, request_id: str, amount: Decimal, admission: Admission
    ) -> None:
        expires_at = _expiry()
        limits = admission.script_args()
        for _ in range(2):
            result = await self.redis.admit(
                user_id=user_id,
                request_id=request_id,
                amount=amount,
                expires_at=expires_at,
                counters=admission.counters,
                limits=limits,
            )
            if result[0] == 1:
                admission.remaining = result[1:]
                return
            if result[0] == -2:
                raise admission.refusal(result[1] - 1, time.time())
            if result[0] == 0:
                raise InsufficientCredit
            await db_call(
                credit_avail_seed_from_ledger, user_id=user_id
            )  # first request of this user here
        raise InsufficientCredit

    async def settle(self, outcome: RequestOutcome, admission: Admission | None) -> None:
        event = outcome.as_event()
        tokens = outcome.prompt_tokens + outcome.completion_tokens
        settle = partial(
            self.redis.settle,
            user_id=outcome.user_id,
            request_id=outcome.request_id,
            cost=outcome.cost,
            event=orjson.dumps(event),
            token_corrections=admission.corrections(tokens, outcome.cost) if admission else (),
        )
        try:
            try:
                await settle()
            except RedisWireError:
                # The outcome is unknown (the connection dropped mid-call): settling again is
                # safe (the script runs once per request id) and far likelier than the
                # database path to leave `avail` exact.
                await settle()
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
