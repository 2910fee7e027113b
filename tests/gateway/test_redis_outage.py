"""Redis dies (or hangs) under traffic and comes back: two gateway processes keep serving on database
holds and in-process limits, say so in readiness and metrics, go back to Redis when it
answers, and every request is charged exactly once, with Redis' `avail` equal to the
database balance once the dust settles."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db.models import Sum

from accounts.models import ApiKey
from billing.models import CreditAccount, CreditHold, LedgerEntry, PendingAvailChange, RequestLog
from billing.redis_credit import HOLDS, avail_key, from_pico
from tests.support.outages import PrivateRedis
from tests.support.waits import settled_count

pytestmark = pytest.mark.skipif(
    not settings.REDIS_URL or not shutil.which("redis-server"),
    reason="needs a Redis server of its own to kill",
)


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    server = PrivateRedis(tmp_path, persistent=True)
    server.start()
    yield server
    server.kill()


def _ask(client: httpx.Client, gateway: str, key: str, i: int) -> httpx.Response:
    body = {
        "model": "test/echo",
        "messages": [{"role": "user", "content": f"hello {i}"}],
        "stream": i % 3 == 0,
    }
    response = client.post(
        f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )
    response.read()
    return response


def _ready(gateway: str) -> dict:
    response = httpx.get(f"{gateway}/health/readiness", timeout=10)
    assert response.status_code == 200, response.text  # degraded is still ready
    return response.json()


def _wait_for(condition, what: str, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(0.05)


def _metric(gateway: str, name: str) -> float:
    for line in httpx.get(f"{gateway}/metrics", timeout=10).text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"{name} is not among the metrics")


@pytest.mark.parametrize("outage", ["killed", "frozen"])
def test_redis_fails_under_traffic_and_comes_back(own_gateway, make_account, own_redis, outage):
    env = {
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": own_redis.url,
        "GATEWAYZ_REDIS_TIMEOUT_SECONDS": "0.5",
    }
    gateways = [own_gateway(**env), own_gateway(**env)]
    account = make_account(credit=Decimal("5"))
    # Its traffic stays far from its limits, which are counted per process while Redis is
    # away; `limited` shows that limits still hold then.
    ApiKey.objects.filter(pk=account.key_id).update(limit_rpm=100_000, limit_tpm=100_000_000)
    limited = make_account(credit=Decimal("5"))
    ApiKey.objects.filter(pk=limited.key_id).update(limit_rpm=3)
    statuses: list[int] = []
    request_ids: list[str] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        with httpx.Client(timeout=20) as client:
            i = worker
            while not stop.is_set():
                response = _ask(client, gateways[i % 2], account.key, i)
                statuses.append(response.status_code)
                request_ids.append(response.headers["x-request-id"])
                i += 4
                time.sleep(0.01)

    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(traffic, w) for w in range(4)]
        _wait_for(lambda: len(statuses) >= 40, "40 answers with Redis up")

        own_redis.kill() if outage == "killed" else own_redis.freeze()
        _wait_for(
            lambda: all(_ready(g)["status"] == "degraded" for g in gateways),
            "degraded on both processes",
        )
        served_before = len(statuses)
        _wait_for(lambda: len(statuses) >= served_before + 60, "60 answers without Redis")

        # What each process says while Redis is away.
        for gateway in gateways:
            checks = _ready(gateway)["checks"]
            assert checks["redis"]["status"] == "down" and checks["database"]["status"] == "ok"
            assert checks["limits"]["status"] == "down"
            assert "in-process" in checks["limits"]["serving_with"]
            assert _metric(gateway, "gatewayz_redis_up") == 0
            assert _metric(gateway, "gatewayz_redis_outages_total") == 1
        # Limits still hold, in the process: the fourth request in a minute is refused.
        with httpx.Client(timeout=20) as client:
            left = 60 - time.time() % 60
            if left < 5:
                time.sleep(left + 0.1)
            limited_answers = [_ask(client, gateways[0], limited.key, 1) for _ in range(4)]
        assert [r.status_code for r in limited_answers] == [200, 200, 200, 429]
        assert limited_answers[3].json()["error"]["code"] == "rate_limit_exceeded"
        assert PendingAvailChange.objects.filter(user=account.user).exists()

        if outage == "killed":
            own_redis.start()  # the same data, from its append-only file
        else:
            own_redis.thaw()
        _wait_for(
            lambda: all(_ready(g)["status"] == "ok" for g in gateways),
            "back on Redis on both processes",
        )
        served_before = len(statuses)
        _wait_for(lambda: len(statuses) >= served_before + 40, "40 answers with Redis back")
        stop.set()
        for worker in workers:
            worker.result()

    # Every answer was a success: the outage cost the clients nothing.
    assert set(statuses) == {200}, [s for s in statuses if s != 200]
    assert len(set(request_ids)) == len(request_ids)
    for gateway in gateways:
        assert _metric(gateway, "gatewayz_redis_up") == 1

    # Every request is logged once and charged once, at its logged cost.
    logs = settled_count(account.user.pk, len(request_ids), timeout=30)
    assert sorted(log.request_id for log in logs) == sorted(request_ids)
    usage = LedgerEntry.objects.filter(user=account.user, kind=LedgerEntry.Kind.USAGE)
    assert usage.count() == len(request_ids)
    by_request = {e.reference: -e.amount for e in usage}
    assert all(by_request[log.request_id] == log.cost > 0 for log in logs)
    spent = RequestLog.objects.filter(user=account.user).aggregate(s=Sum("cost"))["s"]
    balance = CreditAccount.objects.get(user=account.user).balance
    assert balance == Decimal("5") - spent

    # Redis counts exactly what the database does: the changes made while it was away were
    # mirrored into it, the holds it kept for requests settled meanwhile were released.
    client = own_redis.client()
    _wait_for(
        lambda: not PendingAvailChange.objects.filter(user=account.user).exists(),
        "the pending changes mirrored",
    )
    assert not CreditHold.objects.filter(user=account.user).exists()
    assert client.zcard(HOLDS) == 0
    assert from_pico(client.get(avail_key(account.user.pk))) == balance


def test_redis_lost_again_as_it_comes_back_is_found_again_without_traffic(
    own_gateway, make_account, own_redis
):
    """Lost again in the moments after the gateway went back to it (a new master answering
    NOREPLICAS while its replicas resync, say), then no more requests: the gateway still
    finds Redis by itself and mirrors what it charged meanwhile, rather than waiting on the
    database for the next request to start looking."""
    gateway = own_gateway(
        REDIS_URL=own_redis.url,
        CELERY_BROKER_URL=own_redis.url,
        GATEWAYZ_REDIS_TIMEOUT_SECONDS="0.5",
    )
    account = make_account(credit=Decimal("1"))

    def on_redis() -> bool:
        return bool(_ready(gateway)["checks"]["limits"]["status"] == "ok")

    with httpx.Client(timeout=30) as client:
        assert _ask(client, gateway, account.key, 1).status_code == 200
        own_redis.kill()
        assert _ask(client, gateway, account.key, 2).status_code == 200  # on the database
        own_redis.start()
        _wait_for(on_redis, "back on Redis")
        own_redis.kill()
        assert _ask(client, gateway, account.key, 4).status_code == 200  # sees it gone
        assert not on_redis()
        own_redis.start()
    _wait_for(on_redis, "back on Redis with no request to start it")
    balance = CreditAccount.objects.get(user=account.user).balance
    assert balance < Decimal("1")

    def agrees() -> bool:
        live = own_redis.client().get(avail_key(account.user.pk))
        return live is not None and from_pico(live) == balance

    _wait_for(agrees, "Redis' balance equal to the database's")
