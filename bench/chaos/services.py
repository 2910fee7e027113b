"""The soak's own Postgres cluster and Redis server: started in a temporary directory on free
ports, so faults (kill, restart, wipe) never touch the machine's shared services.

Postgres refuses to run as root; as root (CI, this box) the cluster belongs to the
`postgres` user and its commands run through `runuser`. The soak sends signals to the
processes it started by their PIDs only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import redis


def _pg_bin() -> Path:
    """Postgres' server programs: CHAOS_PG_BIN, else Debian's newest, else initdb's on PATH."""
    if os.environ.get("CHAOS_PG_BIN"):
        return Path(os.environ["CHAOS_PG_BIN"])
    debian = sorted(
        Path("/usr/lib/postgresql").glob("*/bin/initdb"),
        key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0,
    )
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found is None:
        raise RuntimeError("no initdb: install postgresql, or set CHAOS_PG_BIN")
    return Path(found).resolve().parent


PG_BIN = _pg_bin()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait(check: Callable[[], object], what: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except Exception:  # not up yet
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.1)


class OwnPostgres:
    """A Postgres cluster in `root`/data. `down()` is an immediate shutdown (what a crash
    or an OOM kill of the postmaster looks like to clients); `up()` starts it again."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data = root / "data"
        self.port = free_port()
        self.log = root / "postgres.log"
        self.as_root = os.geteuid() == 0

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", "postgres", "--"] if self.as_root else []
        return subprocess.run([*prefix, *args], check=check, capture_output=True, text=True)

    def _own(self, path: Path) -> None:
        if self.as_root:
            shutil.chown(path, "postgres", "postgres")

    def url(self, db: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def init(self, template: Path | None = None) -> None:
        """A fresh cluster, or a copy of `template` (a stopped, migrated cluster)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self._own(self.root)
        if template is not None:
            subprocess.run(["cp", "-a", str(template), str(self.data)], check=True)
        else:
            self._run(
                str(PG_BIN / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
            )
        self.up()

    def up(self) -> None:
        # fsync off: the soak kills processes, never the machine, and the OS keeps what a
        # killed Postgres wrote; it spares the shared box's disk.
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
            "-c fsync=off -c max_connections=200"
        )
        self._run(
            str(PG_BIN / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            options,
            "start",
        )

    def pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def down(self) -> None:
        """Immediate shutdown (SIGQUIT to the postmaster we started): connections drop at
        once, nothing is flushed; the next start replays the WAL."""
        pid = self.pid()
        if pid is None:
            return
        os.kill(pid, signal.SIGQUIT)
        _wait(lambda: not _alive(pid), "postgres shutdown", 30)

    def create_db(self, name: str) -> None:
        self._run(
            str(PG_BIN / "psql"),
            "-h",
            "127.0.0.1",
            "-p",
            str(self.port),
            "-U",
            "postgres",
            "-qc",
            f"CREATE DATABASE {name}",
        )

    def stop(self) -> None:
        self._run(
            str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False
        )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (our child, not reaped) is dead for our purpose
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def redis_server_args(port: int, folder: Path, *extra: str) -> list[str]:
    """A `redis-server` on loopback as production runs it: AOF fsynced every second, no
    eviction; its files and log (`redis.log`) in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return [
        "redis-server",
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(folder),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--logfile",
        str(folder / "redis.log"),
        *extra,
    ]


class OwnRedis:
    """A redis-server with an append-only file (as docker-compose runs it: `appendonly yes`,
    fsync every second) in `root`. `kill()` is SIGKILL; `up()` restarts it from its AOF;
    `wipe()` removes the AOF, so the next start is empty."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = root / "redis.log"

    def url(self, db: int) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def up(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            redis_server_args(self.port, self.root),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = self.client()
        # Up once it answers and has loaded its AOF (a PING during loading is an error).
        _wait(lambda: client.ping() and client.info("persistence")["loading"] == 0, "redis", 30)

    def client(self, db: int = 0) -> redis.Redis:
        return redis.Redis(port=self.port, db=db, socket_timeout=5)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def wipe(self) -> None:
        assert self.proc is None or self.proc.poll() is not None, "wipe a stopped Redis only"
        shutil.rmtree(self.root / "appendonlydir", ignore_errors=True)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
