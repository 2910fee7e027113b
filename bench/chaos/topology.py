"""The production topology as processes, on the soak's own Postgres and Redis: the mock
upstream, `migrate` + `load_catalog`, two inference workers (one uvicorn with `--workers 2`,
whose supervisor respawns a killed worker, as in docker-compose.yml), one web process, a
Celery worker and Celery beat. Every process is started here, in a session of its own, and
only ever signalled by its PID (or its own process group)."""

from __future__ import annotations

import contextlib
import hashlib
import importlib.metadata
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from bench.chaos.services import OwnPostgres, OwnRedis, _alive, free_port

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
PY = sys.executable
DB = "gatewayz_chaos"
UPSTREAM_KEY = "sk-chaos-upstream"
HOLD_TTL_SECONDS = 60  # the least the settings allow: the drain waits this long at most
# Migrated clusters, by the migrations' contents: outside the checkout, so that a fresh
# clone on the same machine (CI's) starts from one too. A miss only costs the ~90 s.
TEMPLATES = Path(
    os.environ.get("GATEWAYZ_PG_TEMPLATES")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gatewayz" / "pg"
)


@dataclass(frozen=True)
class Account:
    name: str
    user_id: int
    key: str
    credit: str


@dataclass
class Topology:
    run_dir: Path
    pg: OwnPostgres
    redis: OwnRedis
    mock_url: str = ""
    inference_url: str = ""
    web_url: str = ""
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    # --- environment -------------------------------------------------------------------
    def env(self, settings: str = "config.settings") -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": settings,
            "DEBUG": "0",
            "SECRET_KEY": "chaos-secret-key-not-for-production-0123456789abcdef",
            "GATEWAYZ_KEY_PEPPER": "chaos-pepper",
            "DATABASE_URL": self.pg.url(DB),
            "REDIS_URL": self.redis.url(0),
            "CELERY_BROKER_URL": self.redis.url(1),
            "ALLOWED_HOSTS": "*",
            "GATEWAYZ_UPSTREAM_NETWORKS": "loopback",
            "GATEWAYZ_CHAOS_UPSTREAM_KEY": UPSTREAM_KEY,
            "GATEWAYZ_HOLD_TTL_SECONDS": str(HOLD_TTL_SECONDS),
            "GATEWAYZ_VAR_DIR": str(self.run_dir / "var"),
            "LOG_LEVEL": "WARNING",
            "PYTHONUNBUFFERED": "1",
        }

    def manage(self, *args: str) -> str:
        out = subprocess.run(
            [PY, "manage.py", *args],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout

    # --- processes ---------------------------------------------------------------------
    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = open(self.run_dir / "logs" / f"{name}.log", "ab")  # noqa: SIM115 (the child's)
        proc = subprocess.Popen(
            cmd, cwd=ROOT, env=env, stdout=log, stderr=log, start_new_session=True
        )
        self.procs[name] = proc
        return proc

    def wait_http(self, name: str, url: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.run_dir}/logs/{name}.log")
            try:
                if httpx.get(url, timeout=2).status_code < 500:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{name} did not answer {url}; see {self.run_dir}/logs/{name}.log")

    def start_mock(self) -> None:
        port = free_port()
        self.mock_url = f"http://127.0.0.1:{port}"
        self.spawn(
            "mock",
            [PY, "-m", "mockserver", "--port", str(port), "--api-key", UPSTREAM_KEY],
            os.environ.copy(),
        )
        self.wait_http("mock", f"{self.mock_url}/health")

    def start_inference(self) -> None:
        port = free_port()
        self.inference_url = f"http://127.0.0.1:{port}"
        metrics = self.run_dir / "metrics"  # emptied before the workers start, as a tmpfs is
        metrics.mkdir(exist_ok=True)
        env = {**self.env("config.settings_inference"), "PROMETHEUS_MULTIPROC_DIR": str(metrics)}
        self.spawn(
            "inference",
            [
                PY,
                "-m",
                "uvicorn",
                "config.asgi_inference:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "2",
                "--no-access-log",
                "--no-proxy-headers",
            ],
            env,
        )
        self.wait_http("inference", f"{self.inference_url}/health")
        self.wait_workers(2, 60)

    def start_web(self) -> None:
        port = free_port()
        self.web_url = f"http://127.0.0.1:{port}"
        self.spawn(
            "web",
            [
                PY,
                "-m",
                "uvicorn",
                "config.asgi:application",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--no-access-log",
                "--no-proxy-headers",
            ],
            self.env(),
        )
        self.wait_http("web", f"{self.web_url}/health")

    def start_celery_worker(self) -> None:
        self.spawn(
            "celery-worker",
            [PY, "-m", "celery", "-A", "config", "worker", "--loglevel", "info"],
            self.env(),
        )

    def start_beat(self) -> None:
        schedule = self.run_dir / "var" / "celerybeat-schedule"
        self.spawn(
            "celery-beat",
            [
                PY,
                "-m",
                "celery",
                "-A",
                "config",
                "beat",
                "--loglevel",
                "info",
                "--schedule",
                str(schedule),
            ],
            self.env("bench.chaos.settings_beat"),
        )

    def inference_workers(self) -> list[int]:
        """The PIDs of uvicorn's worker processes (the supervisor's spawned children)."""
        sup = self.procs["inference"].pid
        try:
            children = Path(f"/proc/{sup}/task/{sup}/children").read_text().split()
        except OSError:
            return []
        workers = []
        for pid in map(int, children):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmdline and _alive(pid):
                workers.append(pid)
        return workers

    def wait_workers(self, n: int, timeout: float, exclude: set[int] | None = None) -> float:
        """Seconds until `n` workers (none of `exclude`) serve; raises past `timeout`."""
        exclude = exclude or set()
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            workers = [p for p in self.inference_workers() if p not in exclude]
            if len(workers) >= n:
                return time.monotonic() - started
            time.sleep(0.05)
        raise RuntimeError(f"inference workers not back within {timeout:.0f} s")

    def kill_group(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for name in list(self.procs):
            proc = self.procs[name]
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.kill_group(name)
        self.redis.stop()
        self.pg.stop()

    # --- the database ------------------------------------------------------------------
    def prepare_database(self) -> None:
        """A migrated database: from a cached template when the migrations are unchanged
        (migrating from zero takes ~90 s here, dj-stripe's mostly), then `migrate` (a no-op
        then) and the catalog, as docker-compose's one-shot `migrate` service runs them."""
        cluster_migrated(self.pg, self.env())
        self.manage("migrate", "--noinput", "-v", "0")
        catalog = (HERE / "catalog.toml").read_text()
        dead = f"http://127.0.0.1:{free_port()}"
        path = self.run_dir / "catalog.toml"
        path.write_text(catalog.replace("{mock}", self.mock_url).replace("{dead}", dead))
        self.manage("load_catalog", str(path))

    def create_accounts(self, plan: list[dict[str, str]]) -> list[Account]:
        out = subprocess.run(
            [PY, "-m", "bench.chaos.accounts", json.dumps(plan)],
            cwd=ROOT,
            env=self.env(),
            check=True,
            capture_output=True,
            text=True,
        )
        credit = {spec["name"]: spec["credit"] for spec in plan}
        rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
        return [Account(r["name"], r["user_id"], r["key"], credit[r["name"]]) for r in rows]


def cluster_migrated(pg: OwnPostgres, env: dict[str, str]) -> None:
    """Starts `pg` with database DB migrated: a copy of the cached template when the
    migrations are unchanged, else migrated from zero (and cached). `env` points
    DATABASE_URL at it. The production smoke test (tests/production) shares the cache."""
    template = TEMPLATES / f"pg-template-{_migrations_hash()}"
    if template.exists():
        pg.init(template)
        return
    pg.init()
    pg.create_db(DB)
    subprocess.run(
        [PY, "manage.py", "migrate", "--noinput", "-v", "0"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
    )
    pg.stop()
    TEMPLATES.mkdir(parents=True, exist_ok=True)
    partial = template.with_suffix(".partial")
    subprocess.run(["rm", "-rf", str(partial)], check=True)
    subprocess.run(["cp", "-a", str(pg.data), str(partial)], check=True)
    partial.rename(template)
    pg.up()


def _migrations_hash() -> str:
    digest = hashlib.sha256(str(sys.version_info[:2]).encode())
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for dist in ("django", "dj-stripe", "djangorestframework-simplejwt"):
        with contextlib.suppress(importlib.metadata.PackageNotFoundError):
            digest.update(f"{dist}={importlib.metadata.version(dist)}".encode())
    return digest.hexdigest()[:16]
