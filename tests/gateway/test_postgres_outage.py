"""Postgres goes away under traffic and comes back (docs/request-path.md, "Cache
invalidation"): keys a process has cached, or that any process put in the shared key cache,
keep being served; a key cached nowhere is a 503 with Retry-After, never a 500; every answer
carries a request id; once the database is back, what changed meanwhile (a revoked key)
reaches every process within a poll, and everything served during the outage is settled.

The outage is a TCP proxy between the gateway processes and the shared Postgres, cut by the
test (refused and reset connections); the test itself talks to Postgres directly, as the web
side beyond a partition would.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import redis
from django.conf import settings
from django.db import connection

from accounts.keys import key_digest
from accounts.models import ApiKey
from accounts.services import api_key_revoke
from billing.redis_credit import avail_key
from core.models import CacheInvalidation, invalidation_announce
from gateway.keycache_shared import PREFIX
from providers.byok import provider_key_put
from providers.models import Provider
from tests.conftest import UPSTREAM_KEY
from tests.support.servers import free_port
from tests.support.tcp_proxy import TcpProxy
from tests.support.waits import settled, settled_count

pytestmark = pytest.mark.skipif(
    not settings.DATABASES["default"]["ENGINE"].endswith("postgresql") or not settings.REDIS_URL,
    reason="the production stack: Postgres, and Redis for the shared key cache",
)

CHAT = {"model": "test/echo", "messages": [{"role": "user", "content": "hello"}]}
MESSAGES = {
    "model": "test/claude",
    "max_tokens": 20,
    "messages": [{"role": "user", "content": "hello"}],
}
ANTHROPIC = {"anthropic-version": "2023-06-01"}
# A revoked key stops working this soon after the database is back: the next poll
# (GATEWAYZ_INVALIDATION_POLL_SECONDS, 0.5 s) replays what it missed; the rest is slack for
# a shared, busy machine.
REVOCATION_AFTER_RECOVERY_SECONDS = 3.0
OUTAGE_SECONDS = 30.0  # the bound: 30 s of Postgres away, ≥ 99% of cached keys served


class Proxied(TcpProxy):
    url = ""


@pytest.fixture
def postgres_proxy(live_db: None) -> Iterator[Proxied]:
    s = connection.settings_dict
    proxy = Proxied(s["HOST"] or "127.0.0.1", int(s["PORT"] or 5432))
    proxy.start()
    proxy.url = f"postgres://{s['USER']}@127.0.0.1:{proxy.port}/{s['NAME']}"
    yield proxy
    proxy.close()


def _ask(client: httpx.Client, gateway: str, key: str, i: int = 0) -> httpx.Response:
    """A chat completion (every third one streamed), or every fourth a message."""
    if i % 4 == 3:
        return client.post(
            f"{gateway}/v1/messages", json=MESSAGES, headers={"x-api-key": key, **ANTHROPIC}
        )
    body = {**CHAT, "stream": i % 3 == 0}
    return client.post(
        f"{gateway}/v1/chat/completions", json=body, headers={"authorization": f"Bearer {key}"}
    )


def _wait_for(condition: Any, what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} within {timeout}s")
        time.sleep(0.05)


def _assert_database_unavailable(response: httpx.Response, route: str, about_key: bool) -> None:
    """`about_key`: the key itself could not be checked (the answer says so: no request log
    row can name its owner), not what the request needed once authenticated."""
    assert response.status_code == 503, response.text
    assert ("to check this API key" in response.json()["error"]["message"]) is about_key
    assert response.headers["retry-after"].isdigit()
    assert response.headers["x-request-id"].startswith("req_")
    body = response.json()
    if route == "messages":  # Anthropic's shape
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
    else:
        assert body["error"]["code"] == "database_unavailable"
        assert body["error"]["type"] == "server_error"


def _during_the_outage(
    gateways: list[str],
    statuses: Counter[int],
    first_only: Any,
    cold: Any,
    revoked_here: Any,
    revoked_there: Any,
    own_key_served: list[str],
) -> None:
    cut_at = time.monotonic()
    with httpx.Client(timeout=20) as client:
        _wait_for(lambda: sum(statuses.values()) >= 100, "100 answers without Postgres")
        # Still ready: the process serves what it has cached.
        for gateway in gateways:
            ready = client.get(f"{gateway}/health/readiness")
            assert ready.status_code == 200, ready.text
            assert ready.json()["status"] == "degraded"
            assert ready.json()["checks"]["database"]["status"] == "down"
            assert "refused" not in ready.text  # the error's kind, not its text
            assert client.get(f"{gateway}/v1/models").status_code == 200
        # A key one process cached is served by the other from the shared key cache, with
        # its account's own provider key (encrypted in the copy).
        for i in range(4):
            response = _ask(client, gateways[1], first_only.key, i)
            assert response.status_code == 200, response.text
            if i < 3:  # test/echo, which the account's own key serves
                own_key_served.append(response.headers["x-request-id"])
        # A key cached nowhere: 503 with Retry-After, in each route's own shape.
        for gateway in gateways:
            _assert_database_unavailable(_ask(client, gateway, cold.key, 0), "chat", True)
            _assert_database_unavailable(_ask(client, gateway, cold.key, 3), "messages", True)
        # Revoked beyond the partition: the shared copy goes at once, so the process that
        # never cached the key cannot take it from Redis.
        api_key_revoke(api_key=ApiKey.objects.get(pk=revoked_there.key_id))
        api_key_revoke(api_key=ApiKey.objects.get(pk=revoked_here.key_id))
        _assert_database_unavailable(_ask(client, gateways[1], revoked_there.key), "chat", True)
        served = sum(statuses.values())
        _wait_for(lambda: sum(statuses.values()) >= served + 200, "200 more answers")
        # Long enough for many polls to fail (one every 0.5 s).
        time.sleep(max(0.0, cut_at + OUTAGE_SECONDS - time.monotonic()))


def _after_it(
    gateways: list[str], cold: Any, unseeded: Any, revoked_here: Any, revoked_there: Any
) -> None:
    recovered = time.monotonic()
    with httpx.Client(timeout=20) as client:
        # What was revoked meanwhile is replayed when the poll recovers.
        for account in (revoked_here, revoked_there):
            for gateway in gateways:
                _wait_for(
                    lambda: _ask(client, gateway, account.key).status_code == 401,  # noqa: B023
                    "the revocation applied",
                    timeout=10,
                )
        took = time.monotonic() - recovered
        assert took < REVOCATION_AFTER_RECOVERY_SECONDS, took
        # A key cached nowhere works again, and so does the account Redis lost.
        assert _ask(client, gateways[1], cold.key).status_code == 200
        assert _ask(client, gateways[0], unseeded.key).status_code == 200


@pytest.mark.timeout(240)
def test_a_postgres_outage_is_served_from_cached_keys(postgres_proxy, own_gateway, make_account):
    gateways = [own_gateway(DATABASE_URL=postgres_proxy.url) for _ in range(2)]
    warm = [make_account() for _ in range(4)]  # served by both processes before the outage
    first_only = make_account()  # served by the first only: the second has it from Redis
    provider_key_put(
        user_id=first_only.user.pk, provider=Provider.objects.get(slug="mock"), raw=UPSTREAM_KEY
    )
    revoked_here = make_account()  # cached by both, revoked during the outage
    revoked_there = make_account()  # cached by the first only, revoked during the outage
    cold = make_account()  # cached nowhere
    unseeded = make_account()  # cached by both; Redis loses its balance during the outage
    # The traffic stays far from the keys' rate limits.
    ApiKey.objects.filter(pk__in=[a.key_id for a in warm]).update(
        limit_rpm=100_000, limit_tpm=100_000_000
    )
    with httpx.Client(timeout=20) as client:
        for account in (*warm, revoked_here, unseeded):
            for gateway in gateways:
                assert _ask(client, gateway, account.key).status_code == 200
        for account in (first_only, revoked_there):
            assert _ask(client, gateways[0], account.key).status_code == 200
    # A catalog edit just before the outage: each process drops its catalog and would rebuild
    # it on its next request, which comes only once the database is gone.
    invalidation_announce(CacheInvalidation.Kind.CATALOG)
    time.sleep(1.5)
    # The key's copy in the shared key cache (its account's change, announced a moment
    # before its first request, may have had it dropped once: served again, it is back).
    with httpx.Client(timeout=20) as client:
        assert _ask(client, gateways[0], first_only.key).status_code == 200
    shared = redis.Redis.from_url(settings.REDIS_URL)
    _wait_for(lambda: shared.exists(PREFIX + key_digest(first_only.key)), "the key's copy")

    statuses: Counter[int] = Counter()
    own_key_served: list[str] = []
    answered: dict[int, list[str]] = {a.user.pk: [] for a in warm}
    missing_id: list[int] = []
    stop = threading.Event()

    def traffic(worker: int) -> None:
        with httpx.Client(timeout=20) as client:
            i = worker
            while not stop.is_set():
                account = warm[i % len(warm)]
                response = _ask(client, gateways[i % 2], account.key, i)
                statuses[response.status_code] += 1
                if "x-request-id" not in response.headers:
                    missing_id.append(response.status_code)
                elif response.status_code == 200:
                    answered[account.user.pk].append(response.headers["x-request-id"])
                i += 5  # co-prime with the 4 keys, 2 gateways, 4 kinds of request
                time.sleep(0.01)

    postgres_proxy.cut()
    with ThreadPoolExecutor(4) as pool:
        workers = [pool.submit(traffic, w) for w in range(4)]
        try:
            _during_the_outage(
                gateways, statuses, first_only, cold, revoked_here, revoked_there, own_key_served
            )
            # A balance Redis lost is seeded from the ledger, in the database: not now.
            redis.Redis.from_url(settings.REDIS_URL).delete(avail_key(unseeded.user.pk))
            with httpx.Client(timeout=20) as client:
                _assert_database_unavailable(_ask(client, gateways[0], unseeded.key), "chat", False)
            postgres_proxy.restore()
            _after_it(gateways, cold, unseeded, revoked_here, revoked_there)
        finally:
            stop.set()
            postgres_proxy.restore()
        for worker in workers:
            worker.result()

    assert not missing_id, missing_id
    assert 500 not in statuses, statuses
    assert statuses[200] >= 0.99 * sum(statuses.values()), statuses
    # Everything served during the outage is written once the database is back.
    for account in warm:
        ids = answered[account.user.pk]
        logs = settled_count(account.user.pk, len(ids) + 2, timeout=60)
        served_ids = {log.request_id for log in logs if log.status == 200}
        assert set(ids) <= served_ids
    for request_id in own_key_served:
        assert settled(request_id, timeout=30).attempts[0]["byok"] is True


def test_with_redis_gone_too_a_cached_key_is_refused_with_503_not_500(
    postgres_proxy, own_gateway, make_account
):
    nowhere = f"redis://127.0.0.1:{free_port()}/0"
    gateway = own_gateway(
        DATABASE_URL=postgres_proxy.url, REDIS_URL=nowhere, CELERY_BROKER_URL=nowhere
    )
    account = make_account()
    with httpx.Client(timeout=20) as client:
        assert _ask(client, gateway, account.key).status_code == 200  # credit on the database

        postgres_proxy.cut()
        # The key is cached, but neither Redis nor the database can hold its credit.
        _assert_database_unavailable(_ask(client, gateway, account.key, 1), "chat", False)
        _assert_database_unavailable(_ask(client, gateway, account.key, 3), "messages", False)

        postgres_proxy.restore()
        _wait_for(
            lambda: _ask(client, gateway, account.key, 1).status_code == 200,
            "served again",
            timeout=10,
        )
