"""The Redis side of credit (main lane: REDIS_URL is set): seeding, mirrored grants, expired
holds, and replayed usage batches."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

import pytest
from django.conf import settings

from accounts.services import user_create
from billing.redis_credit import (
    RedisCredit,
    avail_key,
    credit_holds_release_expired_redis,
    from_pico,
)
from billing.services import credit_avail_seed_from_ledger, credit_grant
from billing.settlement import request_settle
from core.outcome import RequestOutcome
from core.redis_sync import sync_client
from tests.support.outcomes import held_outcome

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis"),
]


def _settled(user_id: int, request_id: str, cost: Decimal) -> RequestOutcome:
    """A request admitted by Redis, settled on the database."""
    outcome = held_outcome(user_id, request_id)
    outcome.charge(cost)
    return outcome


def _avail(user_id: int) -> Decimal:
    return from_pico(sync_client().get(avail_key(user_id)) or 0)


def test_it_seeds_from_the_balance_and_mirrors_later_grants():
    user = user_create(email="seed@example.com")
    credit_grant(user=user, amount=Decimal("2.5"), reference="g1")  # before the seed: not mirrored
    assert sync_client().get(avail_key(user.pk)) is None

    credit_avail_seed_from_ledger(user_id=user.pk)
    credit_grant(user=user, amount=Decimal("0.000000000001"), reference="g2")
    credit_avail_seed_from_ledger(user_id=user.pk)  # a second seed changes nothing

    assert _avail(user.pk) == Decimal("2.500000000001")


def test_it_refuses_what_avail_cannot_cover_and_releases_expired_holds():
    user = user_create(email="holds@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_avail_seed_from_ledger(user_id=user.pk)

    async def admit_three() -> list[list[int]]:
        credit = RedisCredit(settings.REDIS_URL)
        past = time.time() - 1  # already expired
        results = [
            await credit.admit(
                user_id=user.pk,
                request_id=f"r{i}-{user.pk}",
                amount=Decimal("0.4"),
                expires_at=past,
            )
            for i in range(3)
        ]
        await credit.close()
        return results

    assert asyncio.run(admit_three()) == [[1], [1], [0]]
    assert _avail(user.pk) == Decimal("0.2")
    assert credit_holds_release_expired_redis(now=time.time()) >= 2
    assert _avail(user.pk) == Decimal("1")


def test_a_request_leaves_its_concurrency_counter_once_by_settlement_or_by_expiry():
    user = user_create(email="inflight@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    credit_avail_seed_from_ledger(user_id=user.pk)
    counter = f"gwz:rl:test:{user.pk}:concurrent"
    sync_client().delete(counter)

    async def run() -> list[int]:
        credit = RedisCredit(settings.REDIS_URL)
        in_flight = []
        for i, expires_at in enumerate((time.time() + 60, time.time() - 1)):
            result = await credit.admit(
                user_id=user.pk,
                request_id=f"c{i}-{user.pk}",
                amount=Decimal("0.1"),
                expires_at=expires_at,
                counters=[counter],
                limits=[2, 1, 0, 0],  # cap 2, one request, a concurrency counter, no seed
            )
            in_flight.append(result[1])
        in_flight.append(int(sync_client().get(counter)))
        # The second request's hold expires: the sweep releases it and its counter slot...
        credit_holds_release_expired_redis(now=time.time())
        in_flight.append(int(sync_client().get(counter)))
        # ...so its late settlement releases nothing more; the first one's frees its slot.
        for i in range(2):
            await credit.settle(
                user_id=user.pk, request_id=f"c{i}-{user.pk}", cost=Decimal(0), event=b"{}"
            )
        in_flight.append(int(sync_client().get(counter)))
        await credit.close()
        return in_flight

    # remaining after each admission, then in flight: both, after the sweep, after settling
    assert asyncio.run(run()) == [1, 0, 2, 1, 0]
    assert _avail(user.pk) == Decimal("1")


# Balance changes made while Redis was unreachable (billing.services, PendingAvailChange).


@pytest.fixture
def redis_away():
    """This process believes Redis unreachable, as the gateway does after a failure."""
    from core.redis_link import redis_link

    redis_link.lost(ConnectionError("the test says so"))
    yield
    redis_link.restored()


def _seeded_user(email: str, credit: str = "1"):
    user = user_create(email=email)
    credit_grant(user=user, amount=Decimal(credit), reference=f"g-{email}")
    credit_avail_seed_from_ledger(user_id=user.pk)
    return user


def _admit(user_id: int, request_id: str, amount: str) -> None:
    async def run() -> None:
        credit = RedisCredit(settings.REDIS_URL)
        assert await credit.admit(
            user_id=user_id,
            request_id=request_id,
            amount=Decimal(amount),
            expires_at=time.time() + 600,
        ) == [1]
        await credit.close()

    asyncio.run(run())


def test_changes_made_while_redis_is_away_are_recorded_then_mirrored_once(redis_away):
    from billing.models import PendingAvailChange
    from billing.services import credit_pending_apply
    from core.redis_link import redis_link

    user = _seeded_user("away@example.com", "1")
    credit_grant(user=user, amount=Decimal("0.5"), reference="grant-while-away")
    request_settle(outcome=_settled(user.pk, f"away-{user.pk}", Decimal("0.2")))

    pending = PendingAvailChange.objects.filter(user=user)
    assert sorted((p.amount, p.request_id) for p in pending) == [
        (Decimal("-0.2"), f"away-{user.pk}"),
        (Decimal("0.5"), ""),
    ]
    assert _avail(user.pk) == Decimal("1")  # Redis has not seen them

    redis_link.restored()
    assert credit_pending_apply() == 2
    assert credit_pending_apply() == 0
    assert not PendingAvailChange.objects.filter(user=user).exists()
    assert _avail(user.pk) == Decimal("1.3")


def test_a_pending_charge_releases_the_hold_redis_kept_for_its_request(redis_away):
    from billing.redis_credit import HOLDS
    from billing.services import credit_pending_apply

    user = _seeded_user("held@example.com", "1")
    request_id = f"held-{user.pk}"
    _admit(user.pk, request_id, "0.4")  # admitted by Redis, then Redis went away
    assert _avail(user.pk) == Decimal("0.6")
    # so it was settled in the database
    request_settle(outcome=_settled(user.pk, request_id, Decimal("0.1")))

    credit_pending_apply()

    assert _avail(user.pk) == Decimal("0.9")  # the hold back, the charge taken
    assert sync_client().zscore(HOLDS, request_id) is None
    # Its settlement by Redis, had it arrived after all, would now change nothing.
    assert sync_client().exists(f"gwz:credit:settled:{request_id}")


def test_a_pending_charge_of_a_request_redis_settled_after_all_is_not_taken_twice(redis_away):
    from billing.services import credit_pending_apply

    user = _seeded_user("twice@example.com", "1")
    request_id = f"twice-{user.pk}"
    _admit(user.pk, request_id, "0.4")

    async def settle_in_redis() -> None:
        credit = RedisCredit(settings.REDIS_URL)
        assert await credit.settle(
            user_id=user.pk, request_id=request_id, cost=Decimal("0.1"), event=b"{}"
        )
        await credit.close()

    asyncio.run(settle_in_redis())  # the reply was lost: the gateway settled again below
    request_settle(outcome=_settled(user.pk, request_id, Decimal("0.1")))
    credit_pending_apply()

    assert _avail(user.pk) == Decimal("0.9")
    sync_client().delete("gwz:credit:usage")  # the test's bare event is nobody's usage


def test_a_fresh_seed_takes_the_pending_changes_with_the_balance(redis_away):
    from billing.models import PendingAvailChange

    user = user_create(email="reseed@example.com")
    credit_grant(user=user, amount=Decimal("2"), reference="g-reseed")  # recorded, not seeded
    assert PendingAvailChange.objects.filter(user=user).exists()

    credit_avail_seed_from_ledger(user_id=user.pk)  # Redis lost its data, say

    assert not PendingAvailChange.objects.filter(user=user).exists()
    assert _avail(user.pk) == Decimal("2")


def test_a_request_that_cost_nothing_gives_back_the_hold_redis_kept(redis_away):
    from billing.redis_credit import HOLDS
    from billing.services import credit_pending_apply

    user = _seeded_user("free@example.com", "1")
    request_id = f"free-{user.pk}"
    _admit(user.pk, request_id, "0.4")
    # settled in the database, Redis being away
    request_settle(outcome=_settled(user.pk, request_id, Decimal(0)))

    credit_pending_apply()

    assert _avail(user.pk) == Decimal("1")
    assert sync_client().zscore(HOLDS, request_id) is None


def test_a_change_whose_reply_was_lost_is_applied_once(redis_away):
    """Redis applied the change but the reply never came: the record stays, and applying
    it again (the probe, beat) changes nothing."""
    from billing.models import PendingAvailChange
    from billing.redis_credit import credit_pending_mirror
    from billing.services import credit_pending_apply
    from core.redis_link import redis_link

    user = _seeded_user("lost-reply@example.com", "1")
    credit_grant(user=user, amount=Decimal("0.5"), reference="grant-lost-reply")
    change = PendingAvailChange.objects.get(user=user)
    credit_pending_mirror(user_id=user.pk, changes=[(change.pk, change.amount, "")])  # applied
    redis_link.restored()

    credit_pending_apply()

    assert _avail(user.pk) == Decimal("1.5")


def test_a_charge_redis_can_count_nowhere_is_settled_on_the_database_and_counted_once():
    # given: a request admitted, then Redis lost its data (its hold and the user's avail)
    from billing.models import CreditAccount
    from billing.redis_credit import hold_key
    from billing.redis_scripts import SETTLE_ON_DATABASE

    user = _seeded_user("wiped@example.com", "1")
    request_id = f"wiped-{user.pk}"
    _admit(user.pk, request_id, "0.4")
    sync_client().delete(avail_key(user.pk), hold_key(request_id))

    async def settle_in_redis() -> int:
        credit = RedisCredit(settings.REDIS_URL)
        try:
            return await credit.settle(
                user_id=user.pk, request_id=request_id, cost=Decimal("0.1"), event=b"{}"
            )
        finally:
            await credit.close()

    # when: it settles
    answer = asyncio.run(settle_in_redis())

    # then: Redis takes no charge it would forget, and asks again the same way if retried
    assert answer == asyncio.run(settle_in_redis()) == SETTLE_ON_DATABASE
    # the database charges it (as the gateway's settler does), and a fresh seed of avail
    # counts that charge exactly once
    request_settle(outcome=_settled(user.pk, request_id, Decimal("0.1")))
    credit_avail_seed_from_ledger(user_id=user.pk)
    assert _avail(user.pk) == CreditAccount.objects.get(user=user).balance == Decimal("0.9")
