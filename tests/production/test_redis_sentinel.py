"""Redis behind Sentinels (core.redis_topology, core.redis_wire): a master, two replicas and
three Sentinels started on loopback by the test. The gateway finds the master through the
Sentinels, and when the master is killed mid-load it follows the failover; the money holds:
every answered request is recorded once at the cost it was told, no account spends more
than it had, and Redis' balances agree with the database's afterwards. Scripts reach a
replica before they are answered (GATEWAYZ_REDIS_WAIT_REPLICAS), so a failover forgets none
of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
import redis

from billing.models import CreditAccount, RequestLog
from billing.redis_credit import avail_key, from_pico
from tests.support.production import ROOT
from tests.support.redis_ha import MASTER, SentinelSet

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")

INFERENCE_APP = "config.asgi_inference:application"


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    root = Path(tempfile.mkdtemp(prefix="gatewayz-sentinel-"))
    redis_set = SentinelSet(root)
    try:
        redis_set.up()
        yield redis_set
    finally:
        redis_set.stop()
        shutil.rmtree(root, ignore_errors=True)


def _gateway(own_gateway, redis_set: SentinelSet) -> str:
    return own_gateway(
        app=INFERENCE_APP,
        # Its own: the session's other gateways' journal files name another Redis.
        GATEWAYZ_USAGE_SPOOL_DIR=str(redis_set.root / "spool"),
        # The host is the master's name: its address is asked of the Sentinels.
        REDIS_URL=f"redis://{MASTER}/0",
        REDIS_SENTINELS=redis_set.addresses,
        CELERY_BROKER_URL="memory://",
        GATEWAYZ_REDIS_TIMEOUT_SECONDS="1",
    )


# A request of $0.00001, its hold kept small by max_tokens.
CHAT = {"model": "test/echo", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}


def _ask(url: str, key: str, http: httpx.Client | None = None) -> httpx.Response:
    return (http or httpx).post(  # type: ignore[attr-defined]
        f"{url}/v1/chat/completions",
        headers={"authorization": f"Bearer {key}"},
        json=CHAT,
        timeout=30,
    )


def test_the_gateway_finds_the_master_and_follows_a_failover(
    sentinel_set, own_gateway, make_account
):
    url = _gateway(own_gateway, sentinel_set)
    account = make_account(credit=Decimal("1"))
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=account.key, max_retries=0)
    client.chat.completions.create(model="test/echo", messages=[{"role": "user", "content": "a"}])
    first = sentinel_set.master()
    assert first.exists(avail_key(account.user.pk))  # the credit lives on the master

    old = sentinel_set.kill_master()
    new = sentinel_set.wait_failover(old)
    # Served throughout (on the database's holds while no master answers), then back on
    # the new master.
    deadline = time.monotonic() + 30
    while True:
        answer = _ask(url, account.key)
        assert answer.status_code == 200, answer.text
        ready = httpx.get(f"{url}/health/readiness", timeout=10).json()
        checks = ready["checks"]
        if checks["redis"]["status"] == checks["limits"]["status"] == "ok":
            break  # the master answers, and credit and limits are back in Redis
        assert time.monotonic() < deadline, ready
        time.sleep(0.3)
    _ask(url, account.key)
    assert sentinel_set.master().exists(avail_key(account.user.pk))
    assert new != old


def _settled(request_ids: set[str], timeout: float = 60) -> dict[str, RequestLog]:
    deadline = time.monotonic() + timeout
    while True:
        found = {r.request_id: r for r in RequestLog.objects.filter(request_id__in=request_ids)}
        if len(found) == len(request_ids) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_a_master_killed_mid_load_keeps_the_money(sentinel_set, own_gateway, make_account):
    url = _gateway(own_gateway, sentinel_set)
    # A request costs $0.00001 and an account gets ~90 a second here: the first three run
    # out around the kill, during the failover and after it; the last never does.
    credits = [Decimal("0.003"), Decimal("0.005"), Decimal("0.008"), Decimal("1")]
    accounts = [make_account(credit=credit) for credit in credits]
    answered: list[tuple[int, str, Decimal]] = []  # (account, request id, cost told)
    refused: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def load(which: int) -> None:
        with httpx.Client(timeout=30) as http:
            while not stop.is_set():
                answer = _ask(url, accounts[which].key, http)
                with lock:
                    if answer.status_code == 200:
                        cost = Decimal(answer.headers["x-gatewayz-cost"])
                        answered.append((which, answer.headers["x-request-id"], cost))
                    else:
                        assert answer.status_code in {402, 429, 503}, answer.text
                        refused.append(answer.status_code)

    threads = [threading.Thread(target=load, args=(i % 4,)) for i in range(8)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(2)
        before = len(answered)
        old = sentinel_set.kill_master()
        sentinel_set.wait_failover(old)
        time.sleep(4)  # load on the new master
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
    assert before > 20 and len(answered) > before + 20, (before, len(answered))

    # Every answered request is recorded once, at the cost the client was told.
    told = {request_id: cost for _, request_id, cost in answered}
    assert len(told) == len(answered)
    logged = _settled(set(told))
    missing = set(told) - set(logged)
    assert not missing, f"{len(missing)} answered requests never recorded"
    for request_id, row in logged.items():
        assert row.status == 200 and row.cost == told[request_id], request_id

    master = sentinel_set.master()
    for which, account in enumerate(accounts):
        spent = sum((cost for w, _, cost in answered if w == which), Decimal(0))
        row = CreditAccount.objects.get(user=account.user)
        # The database's balance is the credit less what was recorded, and never below 0.
        assert row.balance == credits[which] - spent
        assert row.balance >= 0, f"account {which} overspent by {-row.balance}"
        # The new master's balance agrees once the changes made meanwhile are mirrored
        # (the gateway does it as it finds Redis again).
        deadline = time.monotonic() + 30
        while True:
            live = master.get(avail_key(account.user.pk))
            if live is not None and from_pico(live) == row.balance:
                break
            assert time.monotonic() < deadline, (which, live, row.balance)
            time.sleep(0.5)


def test_the_cache_and_celerys_broker_find_the_master_too(sentinel_set):
    """The settings derive both from REDIS_SENTINELS: django-redis' Sentinel client and
    kombu's `sentinel://` transport. Each writes on the master and reads back."""
    script = (
        "import django; django.setup()\n"
        "from django.core.cache import cache\n"
        "cache.set('sentinel-probe', 'cached', 30); print(cache.get('sentinel-probe'))\n"
        "from config.celery import app\n"
        "with app.connection_for_write() as conn:\n"
        "    conn.ensure_connection(max_retries=2)\n"
        "    queue = conn.SimpleQueue('sentinel-probe')\n"
        "    queue.put('queued'); print(queue.get(timeout=10).payload); queue.close()\n"
        "from django.conf import settings; print(settings.CELERY_BROKER_URL.split(';')[0][:11])\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "REDIS_URL": f"redis://{MASTER}/3",
            "REDIS_SENTINELS": sentinel_set.addresses,
            "CELERY_BROKER_URL": "",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["cached", "queued", "sentinel://"]
    assert redis.Redis(port=sentinel_set.master_port(), db=3).keys("*sentinel-probe*")
