"""DATABASES from the environment (docs/deployment.md, "Postgres"): the primary, an optional
read replica for the dashboards and monitoring reads, and how connections reach Postgres.

Three ways to bound connections, chosen by the deployment:
- the default: each thread keeps its connection for CONN_MAX_AGE (60 s). An inference
  process holds at most its database threads' worth (core.asyncdb: the loop's executor);
- GATEWAYZ_DB_POOL_SIZE=N: Django's own psycopg pool, N connections per process, shared by
  its threads; core.asyncdb gives a connection back after each call;
- GATEWAYZ_DB_PGBOUNCER=1: PgBouncer in transaction mode in front. A transaction may land
  on any server connection, so nothing may outlive one: no server-side cursors
  (`.iterator()` would open one), no prepared statements (psycopg prepares a query run
  five times; PgBouncer before 1.21 cannot route them), no session settings at connect.
"""

from __future__ import annotations

from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from core.env import env_bool, env_int, env_str

POSTGRES = "django.db.backends.postgresql"


def _parsed(url: str, name: str) -> dict[str, Any]:
    try:
        return dict(dj_database_url.parse(url, conn_max_age=60))
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} is not a database URL: {exc}") from exc


def _postgres_tuned(db: dict[str, Any]) -> None:
    options = db.setdefault("OPTIONS", {})
    # A database host that drops packets must not hold a thread (and the request or poll
    # waiting on it) for the minutes the kernel's own connect timeout takes.
    options.setdefault(
        "connect_timeout", env_int("GATEWAYZ_DB_CONNECT_TIMEOUT_SECONDS", 5, minimum=1)
    )
    timeout_ms = env_int("GATEWAYZ_DB_STATEMENT_TIMEOUT_MS", 0, minimum=0)
    pgbouncer = env_bool("GATEWAYZ_DB_PGBOUNCER", False)
    pool_size = env_int("GATEWAYZ_DB_POOL_SIZE", 0, minimum=0)
    if pgbouncer:
        if timeout_ms:
            raise ImproperlyConfigured(
                "GATEWAYZ_DB_STATEMENT_TIMEOUT_MS cannot be sent through PgBouncer (it refuses "
                "the startup option); set it on the role instead: "
                "ALTER ROLE gatewayz SET statement_timeout = '30s'"
            )
        options["prepare_threshold"] = None
        db["DISABLE_SERVER_SIDE_CURSORS"] = True
    elif timeout_ms:
        options["options"] = f"-c statement_timeout={timeout_ms}"
    if pool_size:
        if pgbouncer:
            raise ImproperlyConfigured("use PgBouncer or GATEWAYZ_DB_POOL_SIZE, not both")
        # Connections are the pool's to keep: Django must not also keep one per thread.
        db["CONN_MAX_AGE"] = 0
        options["pool"] = {
            "min_size": 1,
            "max_size": pool_size,
            # A caller waits this long for a free connection, then fails as if Postgres
            # were unreachable (the gateway's fallbacks take over).
            "timeout": env_int("GATEWAYZ_DB_CONNECT_TIMEOUT_SECONDS", 5, minimum=1),
        }


def databases(var_dir: Any) -> dict[str, dict[str, Any]]:
    url = env_str("DATABASE_URL") or f"sqlite:///{var_dir / 'gatewayz.sqlite3'}"
    default = _parsed(url, "DATABASE_URL")
    if default["ENGINE"] == "django.db.backends.sqlite3":
        var_dir.mkdir(parents=True, exist_ok=True)
        # WAL lets the gateway read while the settlement writer commits. IMMEDIATE
        # transactions take the write lock at BEGIN, so a transaction that reads then
        # writes waits its turn (up to `timeout`) instead of failing at once with "database
        # is locked" when another process wrote in between.
        default["OPTIONS"] = {
            "init_command": "PRAGMA journal_mode=WAL;",
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
        }
        default["CONN_MAX_AGE"] = 0
        return {"default": default}
    if default["ENGINE"] == POSTGRES:
        _postgres_tuned(default)
    found = {"default": default}
    replica_url = env_str("DATABASE_REPLICA_URL")
    if replica_url:
        replica = _parsed(replica_url, "DATABASE_REPLICA_URL")
        if replica["ENGINE"] != POSTGRES or default["ENGINE"] != POSTGRES:
            raise ImproperlyConfigured("DATABASE_REPLICA_URL needs Postgres for both databases")
        _postgres_tuned(replica)
        # Tests read the primary under this name: a test database has no replica.
        replica["TEST"] = {"MIRROR": "default"}
        found["replica"] = replica
    return found
