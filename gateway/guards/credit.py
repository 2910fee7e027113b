"""How the hot path reserves and settles credit, and counts the request in its rate limits:
in Redis when REDIS_URL is set (one round trip each, no thread hop, limits exact across
processes), else in the database and in-process limits (the embedded default). Same
contract: a request is counted in its limits only if its credit hold succeeded."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from functools import partial
from typing import Any

import hiredis
import orjson
from django.conf import settings

from billing.journal_file import JournalFile
from billing.redis_credit import UNAVAILABLE_REPLIES, RedisCredit
from billing.redis_journal import record_delivery
from billing.redis_scripts import SETTLE_ON_DATABASE
from billing.services import (
    InsufficientCredit,
    credit_avail_seed_from_ledger,
    credit_pending_apply,
)
from core.asyncdb import db_call
from core.outcome import RequestOutcome
from core.redis_link import redis_link
from core.redis_sync import UNREACHABLE
from core.redis_wire import RedisWireError
from gateway.guards.credit_local import (
    DatabaseCredit,
    Settling,
    hold_expiry,
    in_background,
    settlement_done,
)
from gateway.guards.limits import Admission
from gateway.guards.settlement import settler

log = logging.getLogger(__name__)
RECOVERY_PROBE_SECONDS = 1.0


class RedisCreditGate:
    """Admission and settlement in Redis, and on the database while Redis is unreachable.

    A request is settled where it was admitted (`Admission.local`). Balance changes made on
    the database meanwhile are recorded (billing.services, PendingAvailChange) and mirrored
    into Redis before this process goes back to it, so Redis' `avail` misses none of them.
    While Redis is away, limits are counted per process and credit is checked against the
    database balance, which trails Redis by the usage not written yet (see docs/limits.md).
    """

    def __init__(self, url: str) -> None:
        self.redis = RedisCredit(url, timeout=settings.GATEWAYZ_REDIS_TIMEOUT_SECONDS)
        self.fallback = DatabaseCredit()
        # The journal's copy on disk, for a Redis that loses its data (billing.journal_file).
        self.journal_file = JournalFile(
            settings.GATEWAYZ_USAGE_SPOOL_DIR,
            socket.gethostname(),
            stale_seconds=2 * settings.GATEWAYZ_HOLD_TTL_SECONDS,
        )
        self._recovery: asyncio.Task[None] | None = None

    async def admit(
        self,
        *,
        user_id: int,
        request_id: str,
        amount: Decimal,
        admission: Admission,
        journal: bytes = b"",
    ) -> None:
        if redis_link.up:
            try:
                # Inline, not a helper coroutine: one coroutine fewer on every request.
                expires_at = hold_expiry()
                limits = admission.script_args()
                for _ in range(2):
                    result = await self.redis.admit(
                        user_id=user_id,
                        request_id=request_id,
                        amount=amount,
                        expires_at=expires_at,
                        counters=admission.counters,
                        limits=limits,
                        journal=journal,
                    )
                    if result[0] == 1:
                        admission.remaining = result[1:]
                        if journal:
                            self.journal_file.admitted(request_id, journal)
                        return
                    if result[0] == -2:
                        raise admission.refusal(result[1] - 1, time.time())
                    if result[0] == 0:
                        raise InsufficientCredit
                    await db_call(
                        credit_avail_seed_from_ledger, user_id=user_id
                    )  # first request of this user here
                raise InsufficientCredit
            except (*UNREACHABLE, RedisWireError) as exc:
                # The script may or may not have run: if it did, its hold expires unused.
                redis_link.lost(exc)
            except hiredis.ReplyError as exc:
                if not str(exc).startswith(UNAVAILABLE_REPLIES):
                    raise
                redis_link.lost(exc)
        self._recover_soon()
        admission.local = True
        await self.fallback.admit(
            user_id=user_id,
            request_id=request_id,
            amount=amount,
            admission=admission,
            journal=journal,
        )

    def record_delivery(
        self, request_id: str, entry: bytes, admission: Admission, user_id: int
    ) -> None:
        """Records what a stream has delivered in its journal, where it was admitted; no
        wait for the reply, and nothing if Redis is away (the record before stands)."""
        if admission.local:
            self.fallback.record_delivery(request_id, entry, admission)
        else:
            self.journal_file.delivered(request_id, entry)
            if redis_link.up:
                in_background(
                    record_delivery(
                        self.redis.wire,
                        user_id=user_id,
                        request_id=request_id,
                        entry=entry,
                        expires_at=hold_expiry(),
                    )
                )

    async def settle(self, outcome: RequestOutcome, admission: Admission | None) -> None:
        await self.settle_begin(outcome, admission)

    def settle_begin(self, outcome: RequestOutcome, admission: Admission | None) -> Settling:
        """Settles `outcome`. Its SETTLE command is written to Redis before this returns
        (when the connection is up), so that a process killed from then on still leaves
        the request settled: the answer telling the client its cost is sent after it, and
        the reply awaited after that (gateway.pipeline.serve). Awaiting what it returns finishes
        the settlement: the reply, a retry, the database path."""
        if admission is not None and admission.local:
            return self.fallback.settle_begin(outcome, admission)
        if not redis_link.up:
            settler.submit(outcome)  # a hold Redis keeps is released when Redis is back
            self.journal_file.settled(outcome.request_id)
            return settlement_done()
        tokens = outcome.prompt_tokens + outcome.completion_tokens
        settle = partial(
            self.redis.settle,
            user_id=outcome.user_id,
            request_id=outcome.request_id,
            cost=outcome.cost,
            event=orjson.dumps(outcome.as_event()),
            token_corrections=admission.corrections(tokens, outcome.cost) if admission else (),
        )
        try:
            sent = self.redis.settle_now(**settle.keywords)
        except Exception:
            sent = None  # failing again in `_settle_finish`, which has the fallbacks
        return self._settle_finish(outcome, settle, sent)

    async def _settle_finish(
        self,
        outcome: RequestOutcome,
        settle: Callable[[], Awaitable[int]],
        sent: asyncio.Future[Any] | None,
    ) -> None:
        try:
            try:
                settled = await settle() if sent is None else int(await sent)
            except RedisWireError:
                # The outcome is unknown (the connection dropped mid-call): settling again is
                # safe (the script runs once per request id) and far likelier than the
                # database path to leave `avail` exact.
                settled = await settle()
            except hiredis.ReplyError as exc:
                if not str(exc).startswith("NOSCRIPT"):
                    raise
                settled = await settle()  # a fresh Redis: `evalsha` loads the script
            if settled == SETTLE_ON_DATABASE:  # Redis lost its data since the admission
                settler.submit(outcome)
        except Exception as exc:
            # Settled in the database instead; the request is still charged and logged
            # exactly once, and Redis is told of the charge when it is back.
            if isinstance(exc, RedisWireError) or str(exc).startswith(UNAVAILABLE_REPLIES):
                redis_link.lost(exc)
            else:
                log.exception("settling %s in Redis failed", outcome.request_id)
            settler.submit(outcome)
        self.journal_file.settled(outcome.request_id)

    def _recover_soon(self) -> None:
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.create_task(self._recover())

    async def _recover(self) -> None:
        """While Redis is unreachable: tries it every second; once it answers, mirrors the
        balance changes made meanwhile, and only then goes back to it. Runs until Redis
        holds every change: lost again meanwhile (a master answering NOREPLICAS while its
        replicas resync after a failover), it goes back to trying, so a process whose
        traffic has stopped does not stay on the database with changes unmirrored."""
        while True:
            while not redis_link.up:
                await asyncio.sleep(RECOVERY_PROBE_SECONDS)
                try:
                    await self.redis.ping()
                    mirrored = await db_call(credit_pending_apply)
                except Exception as exc:
                    log.debug("Redis still unreachable: %s", exc)
                    continue
                log.info("mirrored %d balance changes into Redis", mirrored)
                redis_link.restored()
            # Settlements already on their way to the database when Redis came back record
            # their changes a moment later: mirror those too (beat also does, every minute).
            await asyncio.sleep(RECOVERY_PROBE_SECONDS * 5)
            if not redis_link.up:
                continue
            try:
                await db_call(credit_pending_apply)
            except UNREACHABLE as exc:
                # Redis' `avail` lacks charges the database has: serving on it could let a
                # customer spend them again. Back to the database until they are in.
                redis_link.lost(exc)
                continue
            except Exception:
                log.exception("mirroring balance changes into Redis failed; beat will retry")
            return

    async def close(self) -> None:
        if self._recovery is not None:
            self._recovery.cancel()
        self.journal_file.close()
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
