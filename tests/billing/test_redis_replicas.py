"""Scripts reach a replica before they are answered (core.redis_wire, "Replicas"): one WAIT
after all the scripts of an event-loop turn, none without GATEWAYZ_REDIS_WAIT_REPLICAS; a
WAIT that finds too few replicas is counted and the scripts still answered. On a master
and a replica of the test's own."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from django.test import override_settings

from core.redis_sync import UNREACHABLE, RedisUnavailable, sync_client
from core.redis_wire import REPLICA_WAITS_SHORT, RedisWire
from tests.support.servers import free_port

pytestmark = [
    pytest.mark.smoke,
    pytest.mark.skipif(not shutil.which("redis-server"), reason="needs redis-server"),
]

INCR = "return redis.call('INCR', KEYS[1])"


def _server(folder: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    folder.mkdir()
    proc = subprocess.Popen(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(folder),
            *extra,
        ],
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            if client.ping():
                return proc
        except redis.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)


@pytest.fixture
def pair() -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """(master port, the replica's process), the replica in sync."""
    root = Path(tempfile.mkdtemp(prefix="gatewayz-replicas-"))
    master, replica = free_port(), free_port()
    procs = [_server(root / "master", master)]
    procs.append(_server(root / "replica", replica, "--replicaof", "127.0.0.1", str(master)))
    deadline = time.monotonic() + 20
    while redis.Redis(port=master).info("replication")["connected_slaves"] != 1:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    yield master, procs[1]
    for proc in procs:
        proc.kill()
        proc.wait()
    shutil.rmtree(root, ignore_errors=True)


def _commands_seen(port: int, run) -> list[str]:
    """The command names the master executed while `run()` ran (MONITOR)."""
    seen: list[str] = []
    started = threading.Event()

    def watch() -> None:
        with redis.Redis(port=port).monitor() as monitor:
            started.set()
            for line in monitor.listen():
                command = line["command"].split()[0].upper()
                seen.append(command)
                if command == "ECHO":  # the end mark
                    return

    watcher = threading.Thread(target=watch)
    watcher.start()
    started.wait(5)
    time.sleep(0.2)  # MONITOR is on before the first command
    run()
    redis.Redis(port=port).echo("done")
    watcher.join(10)
    return [c for c in seen if c not in {"PING", "ECHO"}]


def _many_scripts(port: int, n: int) -> list[int]:
    async def scenario() -> list[int]:
        wire = RedisWire(f"redis://127.0.0.1:{port}/0")
        await wire.call("PING")  # connected, so the scripts go out in one turn
        answers = await asyncio.gather(*(wire.evalsha(INCR, ["n"], []) for _ in range(n)))
        await wire.close()
        return [int(a) for a in answers]

    return asyncio.run(scenario())


def test_one_wait_follows_a_turns_scripts_and_the_replica_holds_them(pair):
    master, _ = pair
    answers: list[int] = []
    with override_settings(GATEWAYZ_REDIS_WAIT_REPLICAS=1, GATEWAYZ_REDIS_WAIT_MS=5000):
        seen = _commands_seen(master, lambda: answers.extend(_many_scripts(master, 10)))
    assert sorted(answers) == list(range(1, 11))
    scripts = [c for c in seen if c in {"EVAL", "EVALSHA"}]
    assert len(scripts) >= 10 and seen.count("WAIT") >= 1
    assert seen.count("WAIT") < len(scripts)  # grouped, not one per script
    assert seen[-1] == "WAIT"  # after every script
    replica_port = int(redis.Redis(port=master).info("replication")["slave0"]["port"])
    assert redis.Redis(port=replica_port).get("n") == b"10"


def test_without_replicas_asked_no_wait_is_sent(pair):
    master, _ = pair
    with override_settings(GATEWAYZ_REDIS_WAIT_REPLICAS=0):
        seen = _commands_seen(master, lambda: _many_scripts(master, 5))
    assert "WAIT" not in seen and seen.count("EVALSHA") + seen.count("EVAL") >= 5


def test_a_wait_short_of_replicas_is_counted_and_the_script_answered(pair):
    master, replica = pair
    replica.kill()
    replica.wait()
    before = REPLICA_WAITS_SHORT._value.get()
    with override_settings(GATEWAYZ_REDIS_WAIT_REPLICAS=1, GATEWAYZ_REDIS_WAIT_MS=50):
        assert sorted(_many_scripts(master, 3)) == [1, 2, 3]
    assert REPLICA_WAITS_SHORT._value.get() >= before + 1


def test_a_master_short_of_replicas_is_unavailable_to_sync_code_too(pair):
    """NOREPLICAS (min-replicas-to-write unmet) is Redis being away, not a bug: sync callers
    fall back on it as on a lost connection (core.redis_sync.UNREACHABLE)."""
    master, _ = pair
    redis.Redis(port=master).config_set("min-replicas-to-write", 2)  # it has one
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{master}/0"):
        sync_client.cache_clear()
        try:
            with pytest.raises(UNREACHABLE) as refused:
                sync_client().set("x", 1)
            assert isinstance(refused.value, RedisUnavailable)
        finally:
            sync_client.cache_clear()
