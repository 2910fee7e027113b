"""A gateway process killed (SIGKILL) with streams in flight: each request still gets its
request log row (`worker_lost`), from the journal admission kept with its hold, and is
billed for what the journal recorded as delivered; every hold comes back, and the ledger
equals the request log (issue 19, item 14), even when Redis then restarts empty (issue 22)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import redis
from django.conf import settings
from django.db import connections
from django.db.models import Sum
from django.test import override_settings

from billing.lost_requests import holds_release_expired
from billing.models import CreditAccount, CreditHold, LedgerEntry, RequestLog
from billing.redis_credit import (
    PREFIX,
    avail_key,
    credit_prefixes,
    from_pico,
    hold_key,
    holds_key,
    journal_key,
)
from tests.conftest import UPSTREAM_KEY
from tests.support.outages import PrivateRedis
from tests.support.waits import settled

STREAMS = 10
CHAT, MESSAGES = 6, 4  # streams on each route
PRICES = {
    "test/echo": (Decimal("1.00"), Decimal("2.00")),  # per 1M tokens: input, output
    "test/claude": (Decimal("3.00"), Decimal("15.00")),
}
SLOW = '!mock {"chunks": 400, "chunk_delay": 0.05}'  # 20 s of stream, one word per event


def _request(i: int, gateway: str, key: str) -> tuple[str, bytes, dict[str, str], str]:
    if i < CHAT:
        body = {
            "model": "test/echo",
            "stream": True,
            "messages": [{"role": "user", "content": SLOW}],
        }
        return (
            f"{gateway}/v1/chat/completions",
            orjson.dumps(body),
            {"authorization": f"Bearer {key}", "content-type": "application/json"},
            "test/echo",
        )
    body = {
        "model": "test/claude",
        "stream": True,
        "max_tokens": 500,
        "messages": [{"role": "user", "content": SLOW}],
    }
    return (
        f"{gateway}/v1/messages",
        orjson.dumps(body),
        {"x-api-key": key, "anthropic-version": "2023-06-01", "content-type": "application/json"},
        "test/claude",
    )


@dataclass
class Cut:
    """Streams a killed gateway was relaying: per stream, its request id, the size of its
    request body, its model and the events its client got; and when they began and died."""

    ids: list[str] = field(default_factory=lambda: [""] * STREAMS)
    sizes: list[int] = field(default_factory=lambda: [0] * STREAMS)
    models: list[str] = field(default_factory=lambda: [""] * STREAMS)
    received: list[int] = field(default_factory=lambda: [0] * STREAMS)
    began: float = field(default_factory=time.time)
    killed: float = 0.0


def _streams_cut(gateway: str, accounts: list[Any], kill: Callable[[str], None]) -> Cut:
    """Starts STREAMS slow streams, two accounts alternating, and SIGKILLs the gateway once
    each has relayed a few chunks (and made a few journal records)."""
    cut = Cut()

    def stream(i: int) -> None:
        account = accounts[i % 2]
        url, body, headers, cut.models[i] = _request(i, gateway, account.key)
        cut.sizes[i] = len(body)
        with (
            httpx.Client(timeout=30) as client,
            client.stream("POST", url, content=body, headers=headers) as response,
        ):
            assert response.status_code == 200
            cut.ids[i] = response.headers["x-request-id"]
            try:
                for line in response.iter_lines():
                    if line.startswith("data:"):
                        cut.received[i] += 1
            except httpx.TransportError:
                pass  # the gateway died under it

    with ThreadPoolExecutor(STREAMS) as pool:
        clients = [pool.submit(stream, i) for i in range(STREAMS)]
        deadline = time.monotonic() + 20
        while min(cut.received) < 10:  # a few chunks each, and a few journal records
            assert time.monotonic() < deadline, cut.received
            time.sleep(0.02)
        time.sleep(0.5)
        cut.killed = time.time()
        kill(gateway)
        for client in clients:
            client.result(timeout=30)
    return cut


def _billed_by_the_journal(cut: Cut, accounts: list[Any]) -> None:
    """Each cut stream has its `worker_lost` row, billed by the journal's rule; the ledger
    equals the request log, and no hold is left."""
    for i, request_id in enumerate(cut.ids):
        row = settled(request_id, timeout=30)
        account = accounts[i % 2]
        assert (row.status, row.error_type, row.stream) == (502, "worker_lost", True)
        assert (row.user_id, row.api_key_id) == (account.user.pk, account.key_id)
        assert row.requested_model == row.served_model == cut.models[i]
        assert row.endpoint == ("chat.completions" if i < CHAT else "messages")
        assert row.provider == ("mock" if i < CHAT else "mock-anthropic")
        assert cut.began - 1 <= row.created_at.timestamp() <= cut.killed  # when it arrived
        # Billed per the rule: the prompt at ~4 request bytes a token, one output token per
        # event delivered by the last record, which the client had all received.
        assert row.prompt_tokens == cut.sizes[i] // 4
        assert 1 <= row.completion_tokens <= cut.received[i]
        price_in, price_out = PRICES[cut.models[i]]
        expected = (row.prompt_tokens * price_in + row.completion_tokens * price_out) / 10**6
        assert row.cost == expected > 0

    for account in accounts:
        logged = RequestLog.objects.filter(user=account.user).aggregate(s=Sum("cost"))["s"]
        usage = LedgerEntry.objects.filter(user=account.user, kind=LedgerEntry.Kind.USAGE)
        assert usage.count() == STREAMS // 2
        assert usage.aggregate(s=Sum("amount"))["s"] == -logged
        row = CreditAccount.objects.get(user=account.user)
        assert row.balance == Decimal("5") - logged and row.held == 0
    assert not CreditHold.objects.filter(request_id__in=cut.ids).exists()


@pytest.mark.parametrize(
    "credit_store",
    ["redis", "redis in 4 key groups", pytest.param("database", marks=pytest.mark.smoke)],
)
def test_streams_cut_by_a_killed_gateway_are_logged_and_billed(
    own_gateway, kill_gateway, make_account, credit_store, tmp_path: Path
):
    if credit_store != "database" and not settings.REDIS_URL:
        pytest.skip("needs Redis")
    env = {"GATEWAYZ_JOURNAL_SECONDS": "0.2"}
    if credit_store == "database":
        env["REDIS_URL"] = ""  # the embedded default: holds (and journals) in the database
    groups = 4 if "groups" in credit_store else 1  # the layout a Cluster shards by
    env["GATEWAYZ_REDIS_CREDIT_GROUPS"] = str(groups)
    if groups > 1:
        # A host's processes share one layout; the session's other gateways (one group)
        # would read these journal files as their own and find nothing under their names.
        env["GATEWAYZ_USAGE_SPOOL_DIR"] = str(tmp_path / "spool")
    gateway = own_gateway(**env)
    accounts = [make_account(credit=Decimal("5")) for _ in range(2)]
    cut = _streams_cut(gateway, accounts, kill_gateway)
    ids = cut.ids

    assert not RequestLog.objects.filter(request_id__in=ids).exists()  # nothing settled them
    with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=groups):
        # The hold-release job (Celery beat), once their holds are due: before, it leaves
        # them.
        assert holds_release_expired(now=time.time())[0] == 0
        later = time.time() + settings.GATEWAYZ_HOLD_TTL_SECONDS + 1
        lost, _ = holds_release_expired(now=later)
        assert lost >= STREAMS
        if credit_store != "database":
            own_gateway(**env)  # a worker in the dead one's place drains the usage stream

        _billed_by_the_journal(cut, accounts)
        if settings.REDIS_URL:
            client = redis.Redis.from_url(settings.REDIS_URL)
            for request_id in ids:
                for prefix in credit_prefixes():
                    assert client.zscore(holds_key(prefix), request_id) is None
                    assert not client.exists(
                        hold_key(request_id, prefix), journal_key(request_id, prefix)
                    )
            if credit_store != "database":
                for account in accounts:  # Redis' `avail` took the same charges
                    balance = CreditAccount.objects.get(user=account.user).balance
                    assert from_pico(client.get(avail_key(account.user.pk))) == balance


@pytest.mark.parametrize("groups", [1, 4])
def test_requests_cut_by_a_crash_are_billed_though_redis_then_restarts_empty(
    own_gateway, kill_gateway, make_account, tmp_path: Path, groups: int
):
    """The journal lives with the hold, in Redis: a Redis that restarts empty before the
    dead process's holds fall due would take every record of its requests in flight along
    (the 30-minute chaos soak saw it once). The journal's copy on local disk
    (billing.journal_file) is what the next process on the host settles them from."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    own_redis = PrivateRedis(tmp_path)  # no persistence: a restart comes back empty
    own_redis.start()
    spool = tmp_path / "spool"
    env = {
        "REDIS_URL": own_redis.url,
        "CELERY_BROKER_URL": own_redis.url,
        "GATEWAYZ_USAGE_SPOOL_DIR": str(spool),
        "GATEWAYZ_JOURNAL_SECONDS": "0.2",
        # 4: the successor finds each request's group from its journal entry.
        "GATEWAYZ_REDIS_CREDIT_GROUPS": str(groups),
    }
    try:
        gateway = own_gateway(**env)
        accounts = [make_account(credit=Decimal("5")) for _ in range(2)]

        # And an answer that is not a stream, still awaited from the provider at the kill.
        def ask_slowly() -> None:
            body = {
                "model": "test/echo",
                "messages": [{"role": "user", "content": '!mock {"delay": 30}'}],
            }
            headers = {"authorization": f"Bearer {accounts[0].key}"}
            # The gateway dies under it.
            with httpx.Client(timeout=30) as client, contextlib.suppress(httpx.TransportError):
                client.post(f"{gateway}/v1/chat/completions", json=body, headers=headers)

        with ThreadPoolExecutor(1) as pool:
            slow = pool.submit(ask_slowly)
            cut = _streams_cut(gateway, accounts, kill_gateway)
            slow.result(timeout=30)
        dead_files = list(spool.glob("*.journal"))
        assert dead_files
        own_redis.kill()
        own_redis.start()  # empty: the holds and their journals are gone
        assert not own_redis.client().keys("*")

        successor = own_gateway(**env)  # the next worker on the host
        _billed_by_the_journal(cut, accounts)
        unanswered = RequestLog.objects.get(user=accounts[0].user, stream=False)
        assert (unanswered.status, unanswered.error_type) == (502, "worker_lost")
        assert unanswered.cost == 0  # nothing was delivered
        assert all(not path.exists() for path in dead_files)
        # The new Redis' `avail` has the charges: seeded from the balance, or mirrored.
        for account in accounts:
            response = httpx.post(
                f"{successor}/v1/chat/completions",
                json={"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]},
                headers={"authorization": f"Bearer {account.key}"},
                timeout=10,
            )
            assert response.status_code == 200
            settled(response.headers["x-request-id"])
            balance = CreditAccount.objects.get(user=account.user).balance
            with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=groups):
                avail = own_redis.client().get(avail_key(account.user.pk))
            assert from_pico(avail) == balance
    finally:
        own_redis.kill()


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_a_cost_is_on_its_way_to_redis_before_the_client_is_told_it(
    gateway, make_account, monkeypatch, stream
):
    """A process killed after answering but before settling would leave a client told a cost
    (`x-gatewayz-cost`, a stream's `usage.cost`) that nobody was charged (the chaos soak saw
    it once in 70,000 requests). So the SETTLE command is written to Redis before the
    message that tells the cost is handed to the server. Shown at the ASGI interface: the
    server's `send`, given that message, blocks the event loop (the gateway can write
    nothing more) and looks in Redis for the request's settlement."""
    if not settings.REDIS_URL:
        pytest.skip("needs Redis")
    from gateway.endpoints.chat import chat_completions
    from gateway.runtime import runtime_stop

    monkeypatch.setenv("GATEWAYZ_TEST_UPSTREAM_KEY", UPSTREAM_KEY)  # the catalog's credential
    account = make_account(credit=Decimal("5"))
    body: dict = {"model": "test/echo", "messages": [{"role": "user", "content": "hi"}]}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    client = redis.Redis.from_url(settings.REDIS_URL)
    seen: list[tuple[str, bool]] = []  # (request id, settled in Redis when the cost was told)
    request_id = ""

    def settled_in_redis(within: float = 3.0) -> bool:
        deadline = time.monotonic() + within
        while not client.exists(f"{PREFIX}settled:{request_id}"):
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    async def scenario() -> None:
        nonlocal request_id
        raw = orjson.dumps(body)
        waiting = asyncio.Event()

        async def receive() -> dict:
            if not seen and not request_id:
                return {"type": "http.request", "body": raw, "more_body": False}
            await waiting.wait()  # the client stays
            return {"type": "http.disconnect"}

        async def send(message: dict) -> None:
            nonlocal request_id
            if message["type"] == "http.response.start":
                request_id = dict(message["headers"])[b"x-request-id"].decode()
                if not stream:  # the headers tell the cost
                    seen.append(("x-gatewayz-cost", settled_in_redis()))
            elif stream and b'"usage":{' in message.get("body", b""):
                seen.append(("usage.cost", settled_in_redis()))

        scope = {
            "type": "http",
            "method": "POST",
            "path": "/v1/chat/completions",
            "headers": [
                (b"authorization", f"Bearer {account.key}".encode()),
                (b"content-type", b"application/json"),
            ],
            "client": ("127.0.0.1", 50000),
        }
        # One thread for the gateway's database work, whose connection is closed at the end
        # (the session's teardown drops the test database).
        loop = asyncio.get_running_loop()
        loop.set_default_executor(ThreadPoolExecutor(1))
        try:
            await chat_completions(scope, receive, send)
        finally:
            await runtime_stop()
            await loop.run_in_executor(None, connections.close_all)

    asyncio.run(scenario())
    assert seen == [("usage.cost" if stream else "x-gatewayz-cost", True)]
    settled(request_id)  # and the gateway's usage consumer logs it as usual
