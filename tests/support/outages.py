"""Parts a test can break without touching the machine's shared servers: a redis-server of
its own (and, in tests.support.tcp_proxy, a TCP proxy in front of the shared Postgres)."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import redis

from tests.support.servers import free_port


class PrivateRedis:
    """A redis-server on a free port that only the test uses. `persistent=False`: no RDB, no
    AOF, so a restart comes back empty, as a Redis whose data was lost does."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.port = free_port()
        self.directory = directory
        self.persistent = persistent
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        durability = ["--appendonly", "no"]
        if self.persistent:  # every write on disk, as a production Redis holding credit
            durability = ["--appendonly", "yes", "--appendfsync", "always"]
        listen = ["--port", str(self.port), "--bind", "127.0.0.1"]
        self.proc = subprocess.Popen(
            ["redis-server", *listen, "--save", "", *durability, "--dir", str(self.directory)],
            stdout=subprocess.DEVNULL,
        )
        client = self.client()
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.thaw()
            self.proc.kill()
            self.proc.wait()

    def freeze(self) -> None:
        """Stuck, not gone: connections are accepted by the kernel and never answered."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=2)
