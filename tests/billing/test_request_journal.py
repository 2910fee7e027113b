"""The request journal's Redis side (main lane): kept with the hold, gone with it, a delivery
record keeps a live stream's hold from falling due, and a request is settled once whether
its process or the hold-release job gets there first."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.conf import settings

from accounts.services import user_create
from billing.redis_credit import (
    HOLDS,
    PREFIX,
    RedisCredit,
    avail_key,
    from_pico,
    hold_key,
    journal_key,
    to_pico,
)
from billing.redis_journal import journals_due, record_delivery, requests_lost_settle_redis
from billing.services import credit_avail_seed_from_ledger, credit_grant
from core.journal_entries import journal_admission, journal_delivery, lost_outcome
from core.redis_sync import sync_client
from tests.support.outcomes import held_outcome

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis"),
]


def _avail(user_id: int) -> Decimal:
    return from_pico(sync_client().get(avail_key(user_id)) or 0)


def test_a_record_keeps_a_stream_alive_and_settlement_takes_the_journal_away():
    user = user_create(email="journal@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_avail_seed_from_ledger(user_id=user.pk)
    done, alive = f"j-done-{user.pk}", f"j-alive-{user.pk}"
    delivered = Decimal("0.000123")

    async def run() -> None:
        credit = RedisCredit(settings.REDIS_URL)
        soon = time.time() + 60
        for request_id in (done, alive):
            entry = journal_admission(held_outcome(user.pk, request_id), time.time())
            assert await credit.admit(
                user_id=user.pk,
                request_id=request_id,
                amount=Decimal("0.4"),
                expires_at=soon,
                journal=entry,
            ) == [1]
        entry = journal_delivery(
            held_outcome(user.pk, alive), "mock", 10, 20, delivered, time.time()
        )
        await record_delivery(
            credit.wire, user_id=user.pk, request_id=alive, entry=entry, expires_at=soon + 600
        )
        await credit.settle(user_id=user.pk, request_id=done, cost=Decimal("0.1"), event=b"{}")
        # The settled stream's last record, landing late, brings nothing back.
        await record_delivery(
            credit.wire, user_id=user.pk, request_id=done, entry=entry, expires_at=soon + 600
        )
        await credit.close()

    asyncio.run(run())
    redis = sync_client()
    assert not redis.exists(hold_key(done), journal_key(done))
    assert redis.hget(journal_key(alive), "d") is not None
    assert redis.zscore(HOLDS, alive) > time.time() + 600  # its expiry moved on

    # Past its first expiry, not past the record's: alive, so not lost.
    due = {rid: journal for _, rid, journal in journals_due(now=time.time() + 120)}
    assert alive not in due and done not in due
    # Past the record's too: settled from its journal, charged what was delivered.
    later = time.time() + 700
    journal = {rid: j for _, rid, j in journals_due(now=later)}[alive]
    outcome = lost_outcome(alive, journal[b"a"], journal[b"d"])
    assert (outcome.error_type, outcome.provider, outcome.cost) == (
        "worker_lost",
        "mock",
        delivered,
    )
    lost = [(PREFIX, alive, to_pico(outcome.cost), outcome.dated_event())]
    assert requests_lost_settle_redis(now=later, lost=lost) == 1
    assert requests_lost_settle_redis(now=later, lost=lost) == 0  # once
    assert not redis.exists(hold_key(alive), journal_key(alive))
    assert redis.zscore(HOLDS, alive) is None
    assert _avail(user.pk) == Decimal("1") - Decimal("0.1") - delivered


def test_a_request_its_process_settles_after_the_job_read_it_is_settled_once():
    user = user_create(email="journal-race@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_avail_seed_from_ledger(user_id=user.pk)
    request_id = f"j-race-{user.pk}"
    past = time.time() - 1

    async def admit() -> None:
        credit = RedisCredit(settings.REDIS_URL)
        entry = journal_admission(held_outcome(user.pk, request_id), time.time())
        await credit.admit(
            user_id=user.pk,
            request_id=request_id,
            amount=Decimal("0.4"),
            expires_at=past,
            journal=entry,
        )
        await credit.close()

    async def settle() -> None:
        credit = RedisCredit(settings.REDIS_URL)
        await credit.settle(
            user_id=user.pk, request_id=request_id, cost=Decimal("0.2"), event=b"{}"
        )
        await credit.close()

    asyncio.run(admit())
    journal = {rid: j for _, rid, j in journals_due(now=time.time())}[request_id]
    outcome = lost_outcome(request_id, journal[b"a"], None)  # nothing delivered: no charge
    assert outcome.cost == 0 and outcome.provider == ""
    asyncio.run(settle())  # the process was slow, not dead
    lost = [(PREFIX, request_id, 0, outcome.dated_event())]
    assert requests_lost_settle_redis(now=time.time(), lost=lost) == 0
    assert _avail(user.pk) == Decimal("0.8")  # charged once, by its own settlement
    assert not sync_client().exists(f"{PREFIX}hold:{request_id}")
