"""A Redis Cluster (core.redis_cluster, core.redis_topology): six nodes started on loopback by
the test, three masters with a replica each. The hot path's wire routes each command to its
key's master and follows MOVED and ASK while a slot moves; a gateway with four credit
groups serves, bills and records on it; and when a master is killed mid-load its replica
takes over and the money holds, as with Sentinels: every answered request recorded once at
the cost it was told, no account over its credit, Redis' balances agreeing with the
database's afterwards."""

from __future__ import annotations

import asyncio
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
from django.test import override_settings

from billing.models import CreditAccount, RequestLog
from billing.redis_credit import avail_key, credit_prefixes, from_pico, hold_key, holds_key
from core.redis_cluster import ClusterWire, command_key, slot_of
from tests.gateway.test_crash_journal import STREAMS, _billed_by_the_journal, _streams_cut
from tests.support.money_load import CHAT, Load, assert_money_kept
from tests.support.production import ROOT
from tests.support.redis_cluster import ClusterSet
from tests.support.redis_ha import running
from tests.support.waits import settled

pytestmark = pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server")

INFERENCE_APP = "config.asgi_inference:application"
GROUPS = 6  # two per master, about: every master holds some customers' credit


@pytest.fixture(scope="module")
def cluster() -> Iterator[ClusterSet]:
    """Shared by the tests that leave it as they found it."""
    with running(ClusterSet, "gatewayz-cluster-") as servers:
        yield servers


@pytest.fixture
def own_cluster() -> Iterator[ClusterSet]:
    """For a test that kills a node."""
    with running(ClusterSet, "gatewayz-cluster-") as servers:
        yield servers


def _seeds(cluster: ClusterSet) -> list[tuple[str, int]]:
    return [("127.0.0.1", int(seed.split(":")[1])) for seed in cluster.seeds.split(",")]


# --- the wire --------------------------------------------------------------------------------
GET = "return redis.call('GET', KEYS[1])"


def _move_slot(cluster: ClusterSet, slot: int, source: int, target: int, *, finish: bool) -> None:
    """Starts moving a slot from one master to another (IMPORTING, MIGRATING); with `finish`,
    moves its keys and gives it to the target (as `redis-cli --cluster reshard` does)."""
    src, dst = cluster.node(source), cluster.node(target)
    dst.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", cluster.node_id(source))
    src.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", cluster.node_id(target))
    if not finish:
        return
    while keys := src.execute_command("CLUSTER GETKEYSINSLOT", slot, 100):
        src.execute_command("MIGRATE", "127.0.0.1", target, "", 0, 5000, "KEYS", *keys)
    for port in cluster.masters():
        cluster.node(port).execute_command("CLUSTER SETSLOT", slot, "NODE", cluster.node_id(target))


def test_a_command_goes_by_its_first_key():
    assert command_key(("GET", "a")) == "a"
    assert command_key(("EVALSHA", "sha", 2, "k1", "k2", "arg")) == "k1"
    assert command_key(("EVAL", "return 1", 0)) is None
    read = ("XREADGROUP", "GROUP", "g", "c", "COUNT", 5, "BLOCK", 9, "STREAMS", "s1", ">")
    assert command_key(read) == "s1"
    assert command_key(("XGROUP", "CREATE", "s", "g", "0", "MKSTREAM")) == "s"
    assert command_key((b"ping",)) is None
    # A group's keys share a slot: only the tag is hashed.
    assert slot_of("gwz:credit:{g3}:avail:42") == slot_of("gwz:rl:{g3}:key:9") == slot_of("g3")


ECHO = "return ARGV[1] .. '@' .. KEYS[1]"


def test_the_wire_routes_by_key_and_follows_a_moving_slot(cluster):
    key, other = "{m}:balance", "{m}:arrived"
    slot = slot_of(key)
    source = cluster.master_of(key)
    target = next(port for port in cluster.masters() if port != source)

    async def scenario() -> None:
        wire = ClusterWire("redis://127.0.0.1/0", _seeds(cluster), timeout=5)
        try:
            # Concurrent calls on every master, each answered its own reply.
            echoes = [wire.evalsha(ECHO, [f"k{n}"], [f"v{n}"]) for n in range(300)]
            assert await asyncio.gather(*echoes) == [f"v{n}@k{n}".encode() for n in range(300)]
            # Keys on every master, each where the cluster says.
            for n in range(30):
                await wire.call("SET", f"spread:{n}", n)
            for n in range(30):
                assert cluster.node(cluster.master_of(f"spread:{n}")).get(f"spread:{n}") == (
                    str(n).encode()
                )
            assert await wire.evalsha(GET, [key], []) is None
            await wire.call("SET", key, "100")
            assert cluster.node(source).get(key) == b"100"

            # Mid-migration: a key already gone from the source (here: a new one) is
            # answered ASK, and goes to the target after ASKING; the map stays.
            _move_slot(cluster, slot, source, target, finish=False)
            assert await wire.call("SET", other, "7") == b"OK"
            asking = cluster.node(target).pipeline(transaction=False)
            asking.execute_command("ASKING")
            asking.get(other)
            assert asking.execute()[1] == b"7"  # at the target already
            assert await wire.call("GET", key) == b"100"  # still at the source
            assert wire._slots is not None and wire._slots[slot][1] == source

            # Migrated: MOVED, the command resent to the new master, the map learnt.
            _move_slot(cluster, slot, source, target, finish=True)
            assert await wire.evalsha(GET, [key], []) == b"100"
            assert await wire.call("GET", other) == b"7"
            await asyncio.sleep(0.2)  # the map asked again after MOVED
            assert wire._slots[slot][1] == target

            # And back: a script written at once (evalsha_now) to the old master is
            # answered MOVED and followed.
            _move_slot(cluster, slot, target, source, finish=True)
            sent = wire.evalsha_now(GET, [key], [])
            assert sent is not None
            assert await sent == b"100"
        finally:
            await wire.close()

    asyncio.run(scenario())


def test_scripts_wait_for_their_masters_replica(cluster):
    """Group commit per master (core.redis_wire, "Replicas"): a script is answered once the
    master's replica holds it, so a failover keeps it."""

    async def scenario() -> None:
        wire = ClusterWire("redis://127.0.0.1/0", _seeds(cluster), timeout=5)
        try:
            writes = [
                wire.evalsha("return redis.call('INCR', KEYS[1])", [f"{{w{n}}}:n"], [])
                for n in range(12)
            ]
            assert await asyncio.gather(*writes) == [1] * 12
        finally:
            await wire.close()

    with override_settings(GATEWAYZ_REDIS_WAIT_REPLICAS=1):
        asyncio.run(scenario())
    for port in cluster.masters():
        info = cluster.node(port).info("replication")
        assert info["connected_slaves"] == 1


# --- a gateway on the cluster -------------------------------------------------------------------
def _gateway(own_gateway, cluster: ClusterSet, **env: str) -> str:
    return own_gateway(
        **{
            "app": INFERENCE_APP,
            # Its own: the session's other gateways' journal files name another Redis.
            "GATEWAYZ_USAGE_SPOOL_DIR": str(cluster.root / "spool"),
            "REDIS_URL": "redis://127.0.0.1/0",  # the password and database 0
            "REDIS_CLUSTER_NODES": cluster.seeds,
            "GATEWAYZ_REDIS_CREDIT_GROUPS": str(GROUPS),
            "CELERY_BROKER_URL": "memory://",
            "GATEWAYZ_REDIS_TIMEOUT_SECONDS": "1",
            **env,
        }
    )


def _avail(user_id: int) -> str:
    with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=GROUPS):
        return avail_key(user_id)


def test_a_gateway_on_a_cluster_serves_bills_and_records(cluster, own_gateway, make_account):
    url = _gateway(own_gateway, cluster)
    accounts = [make_account(credit=Decimal("1")) for _ in range(GROUPS)]
    told = {}
    for account in accounts:
        client = openai.OpenAI(base_url=f"{url}/v1", api_key=account.key, max_retries=0)
        for _ in range(3):
            raw = client.chat.completions.with_raw_response.create(**CHAT)  # type: ignore[call-overload]
            told[raw.headers["x-request-id"]] = (account, Decimal(raw.headers["x-gatewayz-cost"]))
    homes = set()
    for request_id, (_, cost) in told.items():
        row = settled(request_id, timeout=30)
        assert row.cost == cost and row.status == 200
    for account in accounts:
        row = CreditAccount.objects.get(user=account.user)
        spent = sum((c for a, c in told.values() if a is account), Decimal(0))
        assert row.balance == Decimal("1") - spent
        # The live balance is on the master of its group's slot, and agrees.
        home = cluster.master_of(_avail(account.user.pk))
        homes.add(home)
        assert from_pico(cluster.node(home).get(_avail(account.user.pk))) == row.balance
    assert len(homes) >= 2  # the customers' credit is spread over the masters
    ready = httpx.get(f"{url}/health/readiness", timeout=10).json()
    assert ready["checks"]["redis"]["status"] == "ok", ready

    # The sync side on the Cluster: a grant mirrored into the live balance (WAIT on its
    # master), beat's jobs group by group, the crash journals' reads (a transaction per
    # group), the queue metrics.
    first = accounts[0]
    before = from_pico(
        cluster.node(cluster.master_of(_avail(first.user.pk))).get(_avail(first.user.pk))
    )
    jobs = (
        "import django; django.setup()\n"
        "from decimal import Decimal\n"
        "from accounts.models import User\n"
        "from billing.services import credit_grant\n"
        f"credit_grant(user=User.objects.get(pk={first.user.pk}), amount=Decimal('2'),"
        " reference='cluster-grant')\n"
        "from billing.tasks import release_expired_holds, mirror_pending_balance_changes\n"
        "print(release_expired_holds(), mirror_pending_balance_changes())\n"
        "from billing.journal_file import journal_files_settle\n"
        f"print(journal_files_settle({str(cluster.root / 'spool')!r}))\n"
        "from monitoring.collectors import _queues\n"
        "print(','.join(sorted(m.name for m in _queues())))\n"
    )
    done = _cluster_python(cluster, jobs, DATABASE_URL=_database_url())
    assert done.stdout.split() == [
        "0",
        "0",
        "0",
        "gatewayz_usage_stream_lag,gatewayz_usage_stream_length",
    ], done.stdout
    after = cluster.node(cluster.master_of(_avail(first.user.pk))).get(_avail(first.user.pk))
    assert from_pico(after) == before + 2


def _database_url() -> str:
    from django.db import connection

    s = connection.settings_dict
    return f"postgres://{s['USER']}@{s['HOST']}:{s['PORT']}/{s['NAME']}"


def _cluster_python(
    cluster: ClusterSet, script: str, **env: str
) -> subprocess.CompletedProcess[str]:
    """Runs `script` in a process whose settings name the Cluster."""
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env={
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "config.settings_test",
            "REDIS_URL": "redis://127.0.0.1/0",
            "REDIS_CLUSTER_NODES": cluster.seeds,
            "GATEWAYZ_REDIS_CREDIT_GROUPS": str(GROUPS),
            "CELERY_BROKER_URL": "memory://",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def test_the_cache_and_sync_clients_use_the_cluster(cluster):
    script = (
        "import django; django.setup()\n"
        "from django.core.cache import cache\n"
        "for n in range(20): cache.set(f'cluster-probe-{n}', n, 30)\n"
        "print(sum(cache.get(f'cluster-probe-{n}') for n in range(20)))\n"
        "cache.delete_many([f'cluster-probe-{n}' for n in range(20)])\n"
        "print(cache.get('cluster-probe-3'))\n"
        "from core.redis_sync import sync_client\n"
        "print(type(sync_client()).__name__)\n"
    )
    done = _cluster_python(cluster, script)
    assert done.stdout.split() == [str(sum(range(20))), "None", "RedisCluster"]


def test_settings_refuse_a_cluster_they_cannot_serve():
    base = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings_test"}
    cases = {
        "GATEWAYZ_REDIS_CREDIT_GROUPS": {"GATEWAYZ_REDIS_CREDIT_GROUPS": "1"},
        "CELERY_BROKER_URL": {"CELERY_BROKER_URL": ""},
        "database 0": {"REDIS_URL": "redis://127.0.0.1/3"},
    }
    for needs, change in cases.items():
        env = {
            **base,
            "REDIS_URL": "redis://127.0.0.1/0",
            "REDIS_CLUSTER_NODES": "127.0.0.1:7000",
            "GATEWAYZ_REDIS_CREDIT_GROUPS": "4",
            "CELERY_BROKER_URL": "memory://",
            **change,
        }
        done = subprocess.run(
            [sys.executable, "-c", "import django; django.setup()"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode != 0 and needs in done.stderr, (needs, done.stderr[-500:])


# --- a process killed with streams in flight --------------------------------------------------
def test_streams_cut_by_a_killed_gateway_are_billed_on_a_cluster(
    cluster, own_gateway, kill_gateway, make_account
):
    """The crash-journal test (tests/gateway/test_crash_journal.py) on the Cluster: the
    journal files read a transaction per group, beat's job finds the due holds group by
    group and settles them with one script per group, each on its master."""
    spool = cluster.root / "crash-spool"
    env = {"GATEWAYZ_JOURNAL_SECONDS": "0.2", "GATEWAYZ_USAGE_SPOOL_DIR": str(spool)}
    gateway = _gateway(own_gateway, cluster, **env)
    accounts = [make_account(credit=Decimal("5")) for _ in range(2)]
    cut = _streams_cut(gateway, accounts, kill_gateway)
    assert not RequestLog.objects.filter(request_id__in=cut.ids).exists()

    jobs = (
        "import django, time; django.setup()\n"
        "from django.conf import settings\n"
        "from billing.journal_file import journal_files_settle\n"
        "from billing.lost_requests import holds_release_expired\n"
        # The holds are in Redis still: the files leave them to the hold-release job.
        f"print(journal_files_settle({str(spool)!r}))\n"
        "print(holds_release_expired(now=time.time())[0])\n"
        "later = time.time() + settings.GATEWAYZ_HOLD_TTL_SECONDS + 1\n"
        "print(holds_release_expired(now=later)[0])\n"
    )
    done = _cluster_python(cluster, jobs, DATABASE_URL=_database_url())
    files, early, lost = (int(n) for n in done.stdout.split())
    assert (files, early) == (0, 0) and lost >= STREAMS, done.stdout
    _gateway(own_gateway, cluster, **env)  # a worker in the dead one's place drains the stream

    _billed_by_the_journal(cut, accounts)
    for account in accounts:
        key = _avail(account.user.pk)
        balance = CreditAccount.objects.get(user=account.user).balance
        assert from_pico(cluster.node(cluster.master_of(key)).get(key)) == balance
    with override_settings(GATEWAYZ_REDIS_CREDIT_GROUPS=GROUPS):
        for request_id in cut.ids:
            for prefix in credit_prefixes():
                master = cluster.node(cluster.master_of(holds_key(prefix)))
                assert master.zscore(holds_key(prefix), request_id) is None
                assert not master.exists(hold_key(request_id, prefix))


# --- a master killed mid-load ---------------------------------------------------------------
def test_a_master_killed_mid_load_keeps_the_money(own_cluster, own_gateway, make_account):
    cluster = own_cluster
    url = _gateway(own_gateway, cluster)
    # As in the Sentinel test: the first accounts run out around the kill, during the
    # failover and after it; the last never does. Their groups are on every master.
    credits = [Decimal("0.003"), Decimal("0.005"), Decimal("0.008"), Decimal("1")] * 2
    accounts = [make_account(credit=credit) for credit in credits]
    victim = cluster.master_of(_avail(accounts[0].user.pk))
    with Load(url, accounts, clients=range(len(accounts))) as load:
        time.sleep(2)
        before = len(load.answered)
        cluster.kill(victim)
        deadline = time.monotonic() + 60
        while victim in cluster.masters():  # its replica promoted in its place
            assert time.monotonic() < deadline, "no failover"
            time.sleep(0.2)
        cluster.wait_ok()
        time.sleep(4)  # load on the new master
    assert before > 20 and len(load.answered) > before + 20, (before, len(load.answered))

    def live_balance(user_id: int) -> bytes | None:
        key = _avail(user_id)
        found: bytes | None = cluster.node(cluster.master_of(key)).get(key)  # type: ignore[assignment]
        return found

    assert_money_kept(load, credits, live_balance)
