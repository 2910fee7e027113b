"""A Redis Cluster on loopback, for the tests: six `redis-server`s (three masters, a replica
each) joined by `redis-cli --cluster create`, each on a free port in a folder of its own,
run as production runs them (AOF fsynced every second, noeviction), with a short node
timeout so that a killed master's replica takes over in a few seconds."""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
from pathlib import Path

import redis

from bench.chaos.services import redis_server_args
from tests.support.redis_ha import _until

# Short, so a killed master's replica takes over in seconds; not shorter, or a node slowed
# by a busy machine is taken for dead.
NODE_TIMEOUT_MS = 2000


def _free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster bus port (10,000 higher, at most 65,535) is free too."""
    while True:
        port = random.randint(20_000, 40_000)
        if _free(port) and _free(port + 10_000):
            return port


class ClusterSet:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.servers: dict[int, subprocess.Popen[bytes]] = {}

    def _server(self, port: int) -> None:
        folder = self.root / f"redis-{port}"
        args = redis_server_args(
            port,
            folder,
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(folder / "nodes.conf"),
            "--cluster-node-timeout",
            str(NODE_TIMEOUT_MS),
            "--repl-diskless-sync-delay",
            "0",
        )
        self.servers[port] = subprocess.Popen(args)
        client = redis.Redis(port=port, socket_timeout=2)
        _until(lambda: client.ping(), f"redis on {port}")

    def up(self) -> None:
        for _ in range(6):
            self._server(cluster_port())
        subprocess.run(
            [
                "redis-cli",
                "--cluster",
                "create",
                *(f"127.0.0.1:{port}" for port in self.servers),
                "--cluster-replicas",
                "1",
                "--cluster-yes",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        self.wait_ok()
        # A replica that never synced would not take over (its data counts as too old).
        _until(
            lambda: all(
                self.node(port).info("replication")["master_link_status"] == "up"
                for port in self.servers
                if port not in self.masters()
            ),
            "replicas in sync",
        )

    # --- reading and faulting ------------------------------------------------------------
    @property
    def seeds(self) -> str:
        return ",".join(f"127.0.0.1:{port}" for port in list(self.servers)[:3])

    def node(self, port: int) -> redis.Redis:
        return redis.Redis(port=port, socket_timeout=5)

    def client(self) -> redis.cluster.RedisCluster:
        port = next(iter(self.servers))
        return redis.cluster.RedisCluster(host="127.0.0.1", port=port, socket_timeout=5)

    def masters(self) -> dict[int, list[int]]:
        """Each live master's port and the slot ranges it serves, as the cluster says."""
        for port in self.servers:
            try:
                slots = self.node(port).execute_command("CLUSTER SLOTS")
            except redis.RedisError:
                continue
            found: dict[int, list[int]] = {}
            for first, last, master, *_ in slots:
                found.setdefault(int(master[1]), []).extend([first, last])
            return found
        raise RuntimeError("no node answers")

    def master_of(self, key: str) -> int:
        slot = int(self.node(next(iter(self.servers))).execute_command("CLUSTER KEYSLOT", key))
        for port, ranges in self.masters().items():
            for first, last in zip(ranges[::2], ranges[1::2], strict=True):
                if first <= slot <= last:
                    return port
        raise RuntimeError(f"no master serves slot {slot}")

    def node_id(self, port: int) -> str:
        return str(self.node(port).execute_command("CLUSTER MYID").decode())

    def kill(self, port: int) -> None:
        """SIGKILLs a node, as a crash of its machine would end it."""
        proc = self.servers.pop(port)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def wait_ok(self, timeout: float = 60) -> None:
        """Until every live node says the cluster is ok and three masters serve it."""

        def ok() -> bool:
            for port in self.servers:
                info = self.node(port).execute_command("CLUSTER INFO")
                if info["cluster_state"] != "ok":
                    return False
            return len(self.masters()) == 3

        _until(ok, "cluster ok", timeout)

    def stop(self) -> None:
        for proc in self.servers.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.servers.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
