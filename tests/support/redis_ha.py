"""Redis high availability on loopback, for the tests: a master with two replicas watched by
three Sentinels, each its own `redis-server` on a free port in a folder of its own, run as
production runs them (AOF fsynced every second, noeviction, writes refused without a
replica in sync)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, TypeVar

import redis

from bench.chaos.services import redis_server_args
from tests.support.servers import free_port

MASTER = "mymaster"


def _until(check: Callable[[], object], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except redis.RedisError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.1)


class _Servers(Protocol):
    def __init__(self, root: Path) -> None: ...
    def up(self) -> None: ...
    def stop(self) -> None: ...


Servers = TypeVar("Servers", bound=_Servers)


@contextmanager
def running(kind: type[Servers], prefix: str) -> Iterator[Servers]:
    """A set of servers (SentinelSet, ClusterSet) up in a folder of its own, for a test;
    stopped and the folder removed after it."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    servers = kind(root)
    try:
        servers.up()
        yield servers
    finally:
        servers.stop()
        shutil.rmtree(root, ignore_errors=True)


class SentinelSet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: dict[int, subprocess.Popen[bytes]] = {}

    # --- servers -------------------------------------------------------------------------
    def _server(self, port: int, *extra: str) -> None:
        folder = self.root / f"redis-{port}"
        # A master cut off from its replicas stops taking writes within 10 s, so a
        # partitioned old master cannot take money the new one never hears of.
        fencing = ("--min-replicas-to-write", "1", "--min-replicas-max-lag", "10")
        self.servers[port] = subprocess.Popen(redis_server_args(port, folder, *fencing, *extra))
        client = redis.Redis(port=port, socket_timeout=2)
        _until(lambda: client.ping(), f"redis on {port}")

    def up(self) -> None:
        master = free_port()
        self._server(master)
        for _ in range(2):
            self._server(free_port(), "--replicaof", "127.0.0.1", str(master))
        _until(
            lambda: redis.Redis(port=master).info("replication").get("min_slaves_good_slaves") == 2,
            "two replicas in sync",
        )
        for _ in range(3):
            port = free_port()
            config = self.root / f"sentinel-{port}.conf"
            config.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.root}\n"
                f"sentinel monitor {MASTER} 127.0.0.1 {master} 2\n"
                f"sentinel down-after-milliseconds {MASTER} 1000\n"
                f"sentinel failover-timeout {MASTER} 10000\n"
                f"sentinel parallel-syncs {MASTER} 1\n"
                f"logfile {self.root / f'sentinel-{port}.log'}\n"
            )
            self.sentinels[port] = subprocess.Popen(["redis-server", str(config), "--sentinel"])
        for port in self.sentinels:
            sentinel = redis.Redis(port=port, socket_timeout=2)
            _until(
                lambda s=sentinel: (
                    len(s.sentinel_slaves(MASTER)) == 2 and len(s.sentinel_sentinels(MASTER)) == 2
                ),
                f"sentinel {port} sees the set",
            )

    # --- reading and faulting ------------------------------------------------------------
    @property
    def addresses(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in self.sentinels)

    def master_port(self) -> int:
        for port, proc in self.sentinels.items():
            if proc.poll() is None:
                _, master = redis.Redis(port=port).sentinel_get_master_addr_by_name(MASTER)
                return int(master)
        raise RuntimeError("no sentinel running")

    def master(self) -> redis.Redis:
        return redis.Redis(port=self.master_port(), socket_timeout=5)

    def kill_master(self) -> int:
        """SIGKILLs the master, as a crash of its machine would end it; returns its port."""
        port = self.master_port()
        proc = self.servers.pop(port)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return port

    def wait_failover(self, old: int, timeout: float = 30) -> int:
        """Waits until every Sentinel names a new master that says it is one."""

        def done() -> bool:
            named = {
                int(redis.Redis(port=p).sentinel_get_master_addr_by_name(MASTER)[1])
                for p in self.sentinels
            }
            if len(named) != 1 or old in named:
                return False
            [port] = named
            return bool(redis.Redis(port=port).info("replication")["role"] == "master")

        _until(done, "failover", timeout)
        return self.master_port()

    def stop(self) -> None:
        for proc in [*self.sentinels.values(), *self.servers.values()]:
            if proc.poll() is None:
                proc.terminate()
        for proc in [*self.sentinels.values(), *self.servers.values()]:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
