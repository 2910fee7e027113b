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
import time
from collections.abc import Iterator
from decimal import Decimal

import httpx
import openai
import pytest
import redis

from billing.redis_credit import avail_key
from tests.support.money_load import Load, ask, assert_money_kept
from tests.support.production import ROOT
from tests.support.redis_ha import MASTER, SentinelSet, running

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")

INFERENCE_APP = "config.asgi_inference:application"


@pytest.fixture
def sentinel_set() -> Iterator[SentinelSet]:
    with running(SentinelSet, "gatewayz-sentinel-") as servers:
        yield servers


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
        answer = ask(url, account.key)
        assert answer.status_code == 200, answer.text
        ready = httpx.get(f"{url}/health/readiness", timeout=10).json()
        checks = ready["checks"]
        if checks["redis"]["status"] == checks["limits"]["status"] == "ok":
            break  # the master answers, and credit and limits are back in Redis
        assert time.monotonic() < deadline, ready
        time.sleep(0.3)
    ask(url, account.key)
    assert sentinel_set.master().exists(avail_key(account.user.pk))
    assert new != old


def test_a_master_killed_mid_load_keeps_the_money(sentinel_set, own_gateway, make_account):
    url = _gateway(own_gateway, sentinel_set)
    # A request costs $0.00001 and an account gets ~90 a second here: the first three run
    # out around the kill, during the failover and after it; the last never does.
    credits = [Decimal("0.003"), Decimal("0.005"), Decimal("0.008"), Decimal("1")]
    accounts = [make_account(credit=credit) for credit in credits]
    with Load(url, accounts, clients=[i % 4 for i in range(8)]) as load:
        time.sleep(2)
        before = len(load.answered)
        old = sentinel_set.kill_master()
        sentinel_set.wait_failover(old)
        time.sleep(4)  # load on the new master
    assert before > 20 and len(load.answered) > before + 20, (before, len(load.answered))

    master = sentinel_set.master()
    assert_money_kept(load, credits, lambda user_id: master.get(avail_key(user_id)))


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
