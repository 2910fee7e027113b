"""What one request costs the shared services: the figures behind docs/scaling.md.

    python -m bench.capacity [--seconds 10] [--connections 64]

Runs Gatewayz' inference app (one worker, pinned to core 1, as `make bench` does) on the
bench's Postgres database and Redis, drives non-stream requests at it with wrk for the
given time, waits until their usage is written to Postgres, and reads, over that window:

- the server's CPU per request and its requests per second (one core);
- Redis: commands per request by name (INFO commandstats), and the redis-server process'
  CPU per request: Redis runs commands on one thread, so 1 s ÷ that is the most requests
  a second one Redis can carry;
- Postgres: transactions, rows inserted and updated per request (pg_stat_database), and
  the postgres processes' CPU per request.

Writes bench/results/<UTC time>-capacity.md and .json.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime
from typing import Any

import psycopg
import redis

from bench import procstat
from bench.run import (
    BENCH_DB,
    GATEWAYZ_PORT,
    LOAD_CORE,
    PY,
    REDIS_DB,
    ROOT,
    SERVER_CORE,
    UPSTREAM_PORT,
    UVICORN,
    Target,
    _body_file,
    _gatewayz_env,
    _gatewayz_setup,
    _pinned,
    _start,
    redis_flush,
    wrk,
)

PG_URL = f"postgres://postgres@127.0.0.1:5432/{BENCH_DB}"


def _redis_stats(client: redis.Redis) -> dict[str, tuple[int, int]]:
    """command → (calls, microseconds Redis spent in it) since Redis started (INFO
    commandstats; a script's time includes the commands it runs, which are also listed)."""
    stats: dict[str, Any] = client.info("commandstats")  # type: ignore[assignment]
    return {
        name.removeprefix("cmdstat_"): (int(figures["calls"]), int(figures["usec"]))
        for name, figures in stats.items()
        if isinstance(figures, dict) and "calls" in figures
    }


def _pg_stats(conn: psycopg.Connection) -> dict[str, int]:
    row = conn.execute(
        "SELECT xact_commit, tup_inserted, tup_updated, tup_deleted FROM pg_stat_database "
        "WHERE datname = %s",
        (BENCH_DB,),
    ).fetchone()
    assert row is not None
    return dict(zip(("commits", "inserted", "updated", "deleted"), map(int, row), strict=True))


def _logged(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM monitoring_requestlog").fetchone()
    assert row is not None
    return int(row[0])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()

    redis_flush()
    key = _gatewayz_setup()
    target = Target(
        "gatewayz",
        f"http://127.0.0.1:{GATEWAYZ_PORT}/v1/chat/completions",
        key,
        "bench/model",
        "bench/slow",
    )
    target.body_files = {False: _body_file(target.model, False)}
    services = procstat.pin(procstat.by_name("postgres", "redis-server"), LOAD_CORE)
    procs = []
    try:
        procs.append(
            _start(
                _pinned(LOAD_CORE, [PY, "-m", "bench.upstream", "--port", str(UPSTREAM_PORT)]),
                f"http://127.0.0.1:{UPSTREAM_PORT}/health",
            )
        )
        target.proc = _start(
            _pinned(
                SERVER_CORE,
                [*UVICORN, "config.asgi_inference:application", "--port", str(GATEWAYZ_PORT)],
            ),
            f"http://127.0.0.1:{GATEWAYZ_PORT}/health",
            env=_gatewayz_env(),
        )
        procs.append(target.proc)
        wrk(target, False, args.connections, 3)  # warm: keys cached, credit seeded

        client = redis.Redis(db=REDIS_DB)
        conn = psycopg.connect(PG_URL, autocommit=True)
        time.sleep(2)  # the warm-up's usage written
        logged0, pg0, redis0 = _logged(conn), _pg_stats(conn), _redis_stats(client)
        server_pids = target.pids()
        redis_pids, pg_pids = procstat.by_name("redis-server"), procstat.by_name("postgres")
        cpu0 = procstat.cpu_seconds(server_pids)
        redis_cpu0, pg_cpu0 = procstat.cpu_by_pid(redis_pids), procstat.cpu_by_pid(pg_pids)

        result = wrk(target, False, args.connections, args.seconds)
        requests = int(result["requests"])
        deadline = time.monotonic() + 60
        while _logged(conn) - logged0 < requests and time.monotonic() < deadline:
            time.sleep(0.2)
        logged = _logged(conn) - logged0

        cpu1 = procstat.cpu_seconds(server_pids)
        redis_cpu1 = procstat.cpu_by_pid(redis_pids)
        pg_cpu1 = procstat.cpu_by_pid(procstat.by_name("postgres"))
        pg1, redis1 = _pg_stats(conn), _redis_stats(client)
    finally:
        for proc in procs:
            proc.terminate()
            proc.wait(10)
        procstat.unpin(services)

    per = max(requests, 1)
    commands = {
        name: round((calls - redis0.get(name, (0, 0))[0]) / per, 3)
        for name, (calls, _) in redis1.items()
        if calls - redis0.get(name, (0, 0))[0] > 0 and name != "info"
    }
    scripts_us = (redis1.get("evalsha", (0, 0))[1] - redis0.get("evalsha", (0, 0))[1]) / per
    figures: dict[str, Any] = {
        "requests": requests,
        "failed": int(result["errors"] + result["non2xx"]),
        "logged": logged,
        "rps_one_core": round(requests / (result["duration_us"] / 1e6)),
        "server_cpu_us": round((cpu1 - cpu0) / per * 1e6, 1),
        "redis_cpu_us": round(procstat.cpu_delta(redis_cpu0, redis_cpu1) / per * 1e6, 1),
        "redis_scripts_us": round(scripts_us, 1),
        "redis_commands": dict(sorted(commands.items(), key=lambda kv: -kv[1])),
        "redis_commands_total": round(sum(commands.values()), 2),
        "pg_cpu_us": round(procstat.cpu_delta(pg_cpu0, pg_cpu1) / per * 1e6, 1),
        "pg_commits": round((pg1["commits"] - pg0["commits"]) / per, 4),
        "pg_rows_inserted": round((pg1["inserted"] - pg0["inserted"]) / per, 3),
        "pg_rows_updated": round((pg1["updated"] - pg0["updated"]) / per, 3),
        "pg_rows_deleted": round((pg1["deleted"] - pg0["deleted"]) / per, 3),
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = ROOT / "bench" / "results" / f"{stamp}-capacity"
    out.with_suffix(".json").write_text(json.dumps(figures, indent=2) + "\n")
    lines = [
        f"# Capacity figures, {stamp}",
        "",
        f"wrk, non-stream, {args.connections} connections, {args.seconds} s; one inference "
        "worker on one core; Postgres, Redis, wrk and the upstream on the other.",
        "",
        "| figure | per request |",
        "|---|---|",
        f"| requests (failed; logged) | {requests} ({figures['failed']}; {logged}) |",
        f"| server requests/s on one core | {figures['rps_one_core']} |",
        f"| server CPU | {figures['server_cpu_us']} µs |",
        f"| Redis CPU | {figures['redis_cpu_us']} µs, of which running the scripts "
        f"{figures['redis_scripts_us']} µs (the rest: reading, parsing, replying) |",
        f"| Redis commands | {figures['redis_commands_total']} "
        f"({', '.join(f'{k} {v}' for k, v in figures['redis_commands'].items())}) |",
        f"| Postgres CPU | {figures['pg_cpu_us']} µs |",
        f"| Postgres commits | {figures['pg_commits']} |",
        f"| Postgres rows inserted / updated / deleted | {figures['pg_rows_inserted']} / "
        f"{figures['pg_rows_updated']} / {figures['pg_rows_deleted']} |",
        "",
    ]
    out.with_suffix(".md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
