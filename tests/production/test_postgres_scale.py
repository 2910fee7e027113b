"""Postgres at scale (config/databases.py), on real servers started here: a primary, a
streaming replica made from it with pg_basebackup, and PgBouncer in transaction mode.

- The dashboards' and monitoring reads go to the replica: with the replica's replay paused,
  a request served and billed on the primary is not in the customer's request list until
  replay resumes; keys, credit and the write itself never wait on the replica.
- GATEWAYZ_DB_POOL_SIZE bounds a process's connections while it serves.
- GATEWAYZ_DB_PGBOUNCER: requests served and billed through PgBouncer in transaction mode,
  past the point where psycopg would prepare statements, and the CSV export (which would
  open a server-side cursor) works.
- GATEWAYZ_DB_STATEMENT_TIMEOUT_MS cancels a statement that runs longer.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import psycopg
import pytest

from bench.chaos.services import PG_BIN, OwnPostgres, OwnRedis
from bench.chaos.topology import DB, cluster_migrated
from tests.support.production import ROOT
from tests.support.servers import free_port

pytestmark = pytest.mark.skipif(
    not (PG_BIN / "pg_basebackup").exists(), reason="needs Postgres' server programs"
)


@dataclass
class Cluster:
    root: Path
    primary: OwnPostgres
    replica: OwnPostgres
    redis: OwnRedis
    catalog: Path
    upstream_key: str

    def env(self, **extra: str) -> dict[str, str]:
        return {
            "PATH": os.environ["PATH"],
            "HOME": str(self.root),
            "LANG": "C.UTF-8",
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "config.settings",
            "DEBUG": "0",
            "SECRET_KEY": "postgres-scale-test-secret-key-0123456789abcdefghij",
            "GATEWAYZ_KEY_PEPPER": "postgres-scale-test-pepper",
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "DATABASE_URL": self.primary.url(DB),
            "REDIS_URL": self.redis.url(0),
            "CELERY_BROKER_URL": self.redis.url(1),
            "GATEWAYZ_VAR_DIR": str(self.root / "var"),
            "GATEWAYZ_UPSTREAM_NETWORKS": "loopback",
            "GATEWAYZ_SMOKE_UPSTREAM_KEY": self.upstream_key,
            "LOG_LEVEL": "WARNING",
            **extra,
        }

    def manage(self, *args: str, **env: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout

    def accounts(self, n: int, credit: str = "5") -> list[tuple[str, str]]:
        """`n` new customers with `credit` each, made in one process: (email, API key)."""
        names = [f"pg-{uuid.uuid4().hex[:8]}" for _ in range(n)]
        plan = json.dumps([{"name": name, "credit": credit} for name in names])
        done = subprocess.run(
            [sys.executable, "-m", "bench.chaos.accounts", plan],
            cwd=ROOT,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
        rows = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        return [(f"{r['name']}@chaos.gatewayz.local", r["key"]) for r in rows]

    def balance(self, email: str) -> Decimal:
        [(balance,)] = _sql(
            self.primary,
            "SELECT a.balance FROM billing_creditaccount a JOIN accounts_user u"
            " ON u.id = a.user_id WHERE u.email = %s",
            email,
        )
        return Decimal(balance)


def _as_postgres(args: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def cluster(mock_upstream) -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="gatewayz-postgres-"))
    root.chmod(0o755)  # Postgres runs as its own user when the tests run as root
    (root / "var").mkdir()
    primary, replica = OwnPostgres(root / "primary"), OwnPostgres(root / "replica")
    redis = OwnRedis(root / "redis")
    catalog = root / "catalog.toml"
    text = (ROOT / "tests" / "data" / "smoke-catalog.toml").read_text()
    catalog.write_text(text.replace("{mock}", mock_upstream.url))
    c = Cluster(root, primary, replica, redis, catalog, mock_upstream.api_key)
    redis.up()
    try:
        cluster_migrated(primary, c.env())
        c.manage("load_catalog", str(catalog))
        # The replica: a base backup of the primary that follows its WAL (-R writes the
        # standby settings).
        replica.root.mkdir()
        shutil.chown(replica.root, "postgres", "postgres") if os.geteuid() == 0 else None
        subprocess.run(
            _as_postgres(
                [
                    str(PG_BIN / "pg_basebackup"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(primary.port),
                    "-U",
                    "postgres",
                    "-D",
                    str(replica.data),
                    "-R",
                    "-X",
                    "stream",
                ]
            ),
            check=True,
            capture_output=True,
        )
        replica.up()
        yield c
    finally:
        replica.stop()
        primary.stop()
        redis.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def serve(cluster) -> Iterator:
    """Starts `uvicorn APP` on the cluster with extra settings; stopped after the test."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(app: str = "config.asgi:application", **env: str) -> str:
        port = free_port()
        log = open(cluster.root / f"server-{port}.log", "wb")  # noqa: SIM115 (the child's)
        proc = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--no-access-log"],
            cwd=ROOT,
            env=cluster.env(**env),
            stdout=log,
            stderr=log,
        )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, (cluster.root / f"server-{port}.log").read_text()
            try:
                if httpx.get(f"{url}/health", timeout=2).status_code == 200:
                    return url
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.2)

    yield start
    for proc in procs:
        proc.terminate()
        proc.wait(20)


def _chat(url: str, key: str) -> openai.types.chat.ChatCompletion:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)
    raw = client.chat.completions.with_raw_response.create(
        model="smoke/echo", messages=[{"role": "user", "content": "hi"}]
    )
    completion = raw.parse()
    completion.cost = Decimal(raw.headers["x-gatewayz-cost"])  # type: ignore[attr-defined]
    completion.request_id = raw.headers["x-request-id"]  # type: ignore[attr-defined]
    return completion


def _sql(pg: OwnPostgres, query: str, *args: object) -> list[tuple]:
    with psycopg.connect(pg.url(DB), autocommit=True) as conn:
        return conn.execute(query, args).fetchall()


def _logged(pg: OwnPostgres, request_id: str, timeout: float = 30) -> tuple:
    deadline = time.monotonic() + timeout
    while not (
        rows := _sql(
            pg, "SELECT status, cost FROM monitoring_requestlog WHERE request_id = %s", request_id
        )
    ):
        assert time.monotonic() < deadline, f"{request_id} was never recorded"
        time.sleep(0.2)
    return rows[0]


def _listed(url: str, key: str) -> set[str]:
    answer = httpx.get(
        f"{url}/user/requests", headers={"authorization": f"Bearer {key}"}, timeout=10
    )
    assert answer.status_code == 200, answer.text
    return {row["request_id"] for row in answer.json()["data"]}


def test_dashboard_reads_come_from_the_replica(cluster, serve):
    web = serve(DATABASE_REPLICA_URL=cluster.replica.url(DB))
    [(_, key)] = cluster.accounts(1)
    _sql(cluster.replica, "SELECT pg_wal_replay_pause()")
    try:
        served = _chat(web, key)  # keys and credit on the primary: the pause is not felt
        assert _logged(cluster.primary, served.request_id)[0] == 200
        time.sleep(1)
        assert served.request_id not in _listed(web, key)  # the replica has not replayed it
    finally:
        _sql(cluster.replica, "SELECT pg_wal_replay_resume()")
    deadline = time.monotonic() + 30
    while served.request_id not in _listed(web, key):
        assert time.monotonic() < deadline, "the replica never caught up"
        time.sleep(0.2)


def _connections(pg: OwnPostgres, app_name: str) -> int:
    [(count,)] = _sql(
        pg, "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", app_name
    )
    return int(count)


def test_the_pool_bounds_a_process_connections(cluster, serve):
    name = f"gwz-pool-{uuid.uuid4().hex[:6]}"
    # One worker process, its connections named by libpq's PGAPPNAME.
    url = serve("config.asgi_inference:application", GATEWAYZ_DB_POOL_SIZE="2", PGAPPNAME=name)
    keys = [key for _, key in cluster.accounts(8)]
    seen = 0
    with ThreadPoolExecutor(16) as pool:
        done = list(pool.map(lambda i: _chat(url, keys[i % len(keys)]), range(48)))
        seen = max(seen, _connections(cluster.primary, name))
    for completion in done:
        status, cost = _logged(cluster.primary, completion.request_id)
        assert status == 200 and cost == completion.cost
    seen = max(seen, _connections(cluster.primary, name))
    assert 1 <= seen <= 2


@pytest.mark.skipif(not shutil.which("pgbouncer"), reason="needs Debian's pgbouncer")
def test_served_and_billed_through_pgbouncer_in_transaction_mode(cluster, serve):
    port = free_port()
    folder = cluster.root / "pgbouncer"
    folder.mkdir(exist_ok=True)
    (folder / "users.txt").write_text('"postgres" ""\n')
    (folder / "pgbouncer.ini").write_text(
        f"[databases]\n{DB} = host=127.0.0.1 port={cluster.primary.port} dbname={DB}\n"
        f"[pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\n"
        f"auth_type = trust\nauth_file = {folder}/users.txt\n"
        "pool_mode = transaction\ndefault_pool_size = 4\nmax_client_conn = 200\n"
        f"unix_socket_dir = {folder}\nlogfile = {folder}/pgbouncer.log\n"
        "ignore_startup_parameters = extra_float_digits\n"
    )
    if os.geteuid() == 0:
        for path in folder.iterdir():
            shutil.chown(path, "postgres", "postgres")
        shutil.chown(folder, "postgres", "postgres")
    bouncer = subprocess.Popen(_as_postgres(["pgbouncer", str(folder / "pgbouncer.ini")]))
    try:
        through = f"postgres://postgres@127.0.0.1:{port}/{DB}"
        deadline = time.monotonic() + 20
        while True:
            try:
                psycopg.connect(through, prepare_threshold=None).close()
                break
            except psycopg.OperationalError:
                assert time.monotonic() < deadline, (folder / "pgbouncer.log").read_text()
                time.sleep(0.2)
        web = serve(DATABASE_URL=through, GATEWAYZ_DB_PGBOUNCER="1")
        [(email, key)] = cluster.accounts(1)
        # More than psycopg's five executions of the same queries, from several clients
        # at once: prepared statements would be routed to server connections that never
        # prepared them.
        with ThreadPoolExecutor(8) as pool:
            done = list(pool.map(lambda _: _chat(web, key), range(24)))
        spent = Decimal(0)
        for completion in done:
            status, cost = _logged(cluster.primary, completion.request_id)
            assert status == 200 and cost == completion.cost
            spent += cost
        assert cluster.balance(email) == Decimal(5) - spent
        # The export streams through .iterator(): a server-side cursor without the setting.
        export = httpx.get(
            f"{web}/user/requests?format=csv",
            headers={"authorization": f"Bearer {key}"},
            timeout=30,
        )
        assert export.status_code == 200
        assert len(export.text.strip().splitlines()) == 1 + len(done)
    finally:
        bouncer.terminate()
        bouncer.wait(10)


def test_a_statement_past_the_timeout_is_cancelled(cluster):
    script = (
        "from django.db import connection\n"
        "c = connection.cursor()\n"
        "c.execute('SHOW statement_timeout'); print(c.fetchone()[0])\n"
        "try:\n"
        "    c.execute('SELECT pg_sleep(2)')\n"
        "except Exception as exc:\n"
        "    print(type(exc.__cause__).__name__)\n"
    )
    out = cluster.manage(
        "shell", "--no-imports", "-c", script, GATEWAYZ_DB_STATEMENT_TIMEOUT_MS="300"
    )
    assert out.split() == ["300ms", "QueryCanceled"]
