"""A gateway process at capacity: requests wait for a slot in priority order, boundedly, and
past the bound get a 429 with Retry-After (not charged, logged). The gateway here has one
upstream slot, so one slow request fills it."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import pytest

from accounts.models import ApiKey
from billing.models import CreditAccount
from core.errors import GatewayError
from gateway.guards.priority import Slots
from tests.support.waits import settled

pytestmark = pytest.mark.smoke


def _post(gateway: str, key: str, content: str = "hi") -> httpx.Response:
    return httpx.post(
        f"{gateway}/v1/chat/completions",
        json={"model": "test/echo", "messages": [{"role": "user", "content": content}]},
        headers={"authorization": f"Bearer {key}"},
        timeout=20,
    )


def _in_thread(results: dict, name: str, call) -> threading.Thread:
    def run() -> None:
        response = call()
        results[name] = (response, time.monotonic())

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.fixture(scope="module")
def one_slot_gateway(start_gateway, stop_gateway) -> Iterator[str]:
    url = start_gateway(GATEWAYZ_PROCESS_MAX_IN_FLIGHT="1", GATEWAYZ_QUEUE_WAIT_SECONDS="1.5")
    yield url
    stop_gateway(url)


def _with_priority(make_account, priority: str):
    account = make_account()
    # Set before the key's first use, so no gateway process has cached it yet.
    ApiKey.objects.filter(pk=account.key_id).update(priority=priority)
    return account


def test_waiting_requests_are_served_by_priority_not_arrival(one_slot_gateway, make_account):
    slow = make_account()
    low, high = _with_priority(make_account, "low"), _with_priority(make_account, "high")
    results: dict = {}

    threads = [
        _in_thread(
            results, "slow", lambda: _post(one_slot_gateway, slow.key, '!mock {"delay": 0.8}')
        )
    ]
    time.sleep(0.3)  # the slot is taken; now low queues, then high
    # Each takes 0.2 s once served, so the order they are served in is the order their
    # clients hear back, by a margin no thread scheduling can turn over (an instant answer
    # each had them heard a millisecond apart, either way round).
    queued = '!mock {"delay": 0.2}'
    threads.append(_in_thread(results, "low", lambda: _post(one_slot_gateway, low.key, queued)))
    time.sleep(0.2)
    threads.append(_in_thread(results, "high", lambda: _post(one_slot_gateway, high.key, queued)))
    for thread in threads:
        thread.join()

    assert [results[n][0].status_code for n in ("slow", "low", "high")] == [200, 200, 200]
    assert results["high"][1] < results["low"][1]  # high arrived last and went first


def test_a_request_that_waits_too_long_gets_a_429_and_is_not_charged(
    one_slot_gateway, make_account
):
    slow, waiting = make_account(), make_account()
    results: dict = {}
    thread = _in_thread(
        results, "slow", lambda: _post(one_slot_gateway, slow.key, '!mock {"delay": 2.5}')
    )
    time.sleep(0.3)

    started = time.monotonic()
    response = _post(one_slot_gateway, waiting.key)
    waited = time.monotonic() - started
    thread.join()

    assert response.status_code == 429
    # It waited its 1.5 s for a slot, and gave up before the slot was free (at ~2.5 s).
    assert waited >= 1.5 and results["slow"][1] > started + waited
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "gateway_busy"
    log = settled(response.headers["x-request-id"])
    assert (log.status, log.cost, log.attempts) == (429, 0, [])
    row = CreditAccount.objects.get(user=waiting.user)
    assert (row.balance, row.held) == (Decimal(10), 0)


def test_a_full_queue_refuses_at_once_and_a_freed_slot_goes_to_the_best_waiter():
    async def scenario() -> tuple[list[str], Slots]:
        slots = Slots(capacity=1, max_waiting=2, wait_seconds=5)
        await slots.acquire()
        order: list[str] = []

        async def wait(name: str, priority: int) -> None:
            await slots.acquire(priority)
            order.append(name)
            slots.release()

        waiters = [asyncio.create_task(wait("low", 3)), asyncio.create_task(wait("critical", 0))]
        await asyncio.sleep(0)
        with pytest.raises(GatewayError) as caught:
            await slots.acquire(1)  # the queue is full
        assert caught.value.code == "gateway_busy"
        slots.release()
        await asyncio.gather(*waiters)
        return order, slots

    order, slots = asyncio.run(scenario())
    assert order == ["critical", "low"]
    assert (slots.in_flight, slots.waiting) == (0, 0)
