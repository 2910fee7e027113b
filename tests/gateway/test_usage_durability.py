"""Postgres out of reach while requests are served, then Redis restarting empty before it
comes back: every answered request still gets its request log row and its ledger entry,
charged what the client was told, and Redis' `avail` ends equal to the balance (issue 19,
item 15). The usage waits on local disk (billing.usage_spool), not only in Redis."""

from __future__ import annotations

import json
import shutil
import time
from decimal import Decimal
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from django.db import connection
from django.db.models import Sum
from django.test import override_settings

from billing.models import CreditAccount, CreditHold, LedgerEntry, PendingAvailChange, RequestLog
from billing.redis_credit import (
    USAGE_STREAM,
    avail_key,
    credit_prefixes,
    from_pico,
    usage_stream_key,
)
from tests.support.outages import PrivateRedis
from tests.support.tcp_proxy import TcpProxy
from tests.support.waits import settled

pytestmark = pytest.mark.skipif(
    not settings.REDIS_URL or not shutil.which("redis-server"),
    reason="needs Postgres and a Redis server of its own to restart",
)


def _ask(client: httpx.Client, gateway: str, key: str, i: int) -> tuple[str, Decimal]:
    """One request, answered 200; its request id and the cost the client was told."""
    text = f"hello number {i}"
    if i % 3 == 2:  # a stream, told its cost in the usage chunk
        body = {
            "model": "test/echo",
            "stream": True,
            "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": text}],
        }
        response = client.post(
            f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
        assert response.status_code == 200, response.text
        events = [line[6:] for line in response.text.splitlines() if line.startswith("data: ")]
        usage = json.loads(events[-2])["usage"]  # the last chunk before [DONE]
        return response.headers["x-request-id"], Decimal(str(usage["cost"]))
    if i % 3 == 1:
        body = {
            "model": "test/claude",
            "max_tokens": 50,
            "messages": [{"role": "user", "content": text}],
        }
        response = client.post(
            f"{gateway}/v1/messages",
            json=body,
            headers={"x-api-key": key, "anthropic-version": "2023-06-01"},
        )
    else:
        body = {"model": "test/echo", "messages": [{"role": "user", "content": text}]}
        response = client.post(
            f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
        )
    assert response.status_code == 200, response.text
    return response.headers["x-request-id"], Decimal(response.headers["x-gatewayz-cost"])


def _limits_in_redis(client: httpx.Client, gateway: str) -> bool:
    checks = client.get(f"{gateway}/health/readiness").json()["checks"]
    return bool(checks["limits"]["status"] == "ok")


def _wait_for(condition, timeout: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.parametrize("groups", [1, 4])
def test_usage_served_while_postgres_is_away_survives_redis_restarting_empty(
    own_gateway, make_account, tmp_path: Path, groups: int
):
    """With 4 key groups too: each group's stream spooled with its group's epoch, and each
    replayed record compared with that group's epoch in the new Redis."""
    with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=groups):
        streams = [usage_stream_key(prefix) for prefix in credit_prefixes()]
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    own_redis = PrivateRedis(tmp_path)
    own_redis.start()
    spool = tmp_path / "spool"
    try:
        gateway = own_gateway(
            DATABASE_URL=f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
            REDIS_URL=own_redis.url,
            CELERY_BROKER_URL=own_redis.url,
            GATEWAYZ_REDIS_TIMEOUT_SECONDS="0.5",
            GATEWAYZ_USAGE_SPOOL_DIR=str(spool),
            GATEWAYZ_REDIS_CREDIT_GROUPS=str(groups),
        )
        accounts = [make_account(credit=Decimal("5")) for _ in range(2)]
        told: dict[str, tuple[int, Decimal]] = {}  # request id -> (account, cost told)
        with httpx.Client(timeout=20) as client:
            for n, account in enumerate(accounts):  # keys cached, `avail` seeded
                request_id, cost = _ask(client, gateway, account.key, n)
                told[request_id] = (n, cost)
                settled(request_id)

            proxy.cut()
            for i in range(24):
                n = i % 2
                request_id, cost = _ask(client, gateway, accounts[n].key, i)
                told[request_id] = (n, cost)
            answered_in_outage = list(told)[2:]
            # The consumer cannot write them: on disk, and out of Redis, in a moment.
            redis_client = own_redis.client()
            _wait_for(lambda: sum(redis_client.xlen(x) for x in streams) == 0, timeout=10)
            assert not RequestLog.objects.filter(request_id__in=answered_in_outage).exists()

            own_redis.kill()  # and it comes back with nothing
            own_redis.start()
            assert sum(redis_client.xlen(x) for x in streams) == 0
            proxy.restore()

            # Served again once the gateway has found both back (a request may meet Redis
            # still counted as down: it is served on the database then).
            for n, account in enumerate(accounts):
                for _attempt in range(50):
                    response = client.post(
                        f"{gateway}/v1/chat/completions",
                        json={
                            "model": "test/echo",
                            "messages": [{"role": "user", "content": "back"}],
                        },
                        headers={"authorization": f"Bearer {account.key}"},
                    )
                    if response.status_code == 200:
                        told[response.headers["x-request-id"]] = (
                            n,
                            Decimal(response.headers["x-gatewayz-cost"]),
                        )
                        break
                    time.sleep(0.2)
                else:
                    raise AssertionError(f"not served after the outage: {response.text}")
            # Back on Redis (no longer admitting on the database): a request of each
            # account is admitted there, which seeds the new Redis' `avail`.
            assert _wait_for(lambda: _limits_in_redis(client, gateway), 20)
            for n, account in enumerate(accounts):
                request_id, cost = _ask(client, gateway, account.key, 100 + 3 * n)
                told[request_id] = (n, cost)

        for request_id, (n, cost) in told.items():
            row = settled(request_id, timeout=30)
            assert (row.user_id, row.cost) == (accounts[n].user.pk, cost)
            assert LedgerEntry.objects.get(reference=request_id).amount == -cost
        users = [a.user.pk for a in accounts]
        assert _wait_for(
            lambda: not PendingAvailChange.objects.filter(user_id__in=users).exists(), 20
        ), list(PendingAvailChange.objects.filter(user_id__in=users).values())
        for n, account in enumerate(accounts):
            costs = [cost for (m, cost) in told.values() if m == n]
            rows = RequestLog.objects.filter(user=account.user)
            # Every answered request logged once; a request refused while the gateway found
            # the database back (a 503 the loop above retried) is logged too, uncharged.
            assert rows.filter(status=200).count() == len(costs), list(
                rows.values_list("request_id", "status", "cost")
            )
            assert not rows.exclude(status=200).exclude(cost=0).exists()
            usage = LedgerEntry.objects.filter(user=account.user, kind=LedgerEntry.Kind.USAGE)
            assert usage.aggregate(s=Sum("amount"))["s"] == -sum(costs)
            balance = CreditAccount.objects.get(user=account.user).balance
            assert balance == Decimal("5") - sum(costs)
            # The new Redis' `avail` (seeded from the balance when the first request came
            # back, whatever the spool had written by then) took every charge once.
            with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=groups):
                key = avail_key(account.user.pk)
            assert _wait_for(
                lambda k=key, b=balance: from_pico(own_redis.client().get(k) or 0) == b, 10
            )
        assert not CreditHold.objects.filter(user_id__in=users).exists()
        assert not list(spool.glob("*.spool"))  # replayed, and gone
    finally:
        proxy.cut()
        own_redis.kill()


def test_usage_spooled_by_a_gateway_killed_during_the_outage_is_written_by_the_next(
    own_gateway, kill_gateway, make_account, tmp_path: Path
):
    db = connection.settings_dict
    proxy = TcpProxy(db["HOST"] or "127.0.0.1", int(db["PORT"] or 5432))
    proxy.start()
    own_redis = PrivateRedis(tmp_path)
    own_redis.start()
    spool = tmp_path / "spool"
    env = {
        "DATABASE_URL": f"postgres://{db['USER']}@127.0.0.1:{proxy.port}/{db['NAME']}",
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": own_redis.url,
        "GATEWAYZ_USAGE_SPOOL_DIR": str(spool),
    }
    try:
        gateway = own_gateway(**env)
        account = make_account(credit=Decimal("5"))
        told: dict[str, Decimal] = {}
        with httpx.Client(timeout=20) as client:
            request_id, cost = _ask(client, gateway, account.key, 0)
            told[request_id] = cost
            settled(request_id)
            proxy.cut()
            for i in range(1, 13):
                request_id, cost = _ask(client, gateway, account.key, i)
                told[request_id] = cost
        assert _wait_for(lambda: own_redis.client().xlen(USAGE_STREAM) == 0, 10)
        assert list(spool.glob("*.spool"))
        kill_gateway(gateway)  # with its usage on disk only
        proxy.restore()
        own_gateway(**env)  # the next worker on the host

        for request_id, cost in told.items():
            row = settled(request_id, timeout=30)
            assert row.cost == cost == -LedgerEntry.objects.get(reference=request_id).amount
        balance = CreditAccount.objects.get(user=account.user).balance
        assert balance == Decimal("5") - sum(told.values())
        # Redis kept its data: its `avail` took each charge at settlement, and only then.
        assert from_pico(own_redis.client().get(avail_key(account.user.pk))) == balance
        assert _wait_for(lambda: not list(spool.glob("*.spool")), 10)
    finally:
        proxy.cut()
        own_redis.kill()
