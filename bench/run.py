"""The benchmark: direct to the upstream, the bare floor proxy, Gatewayz (full pipeline on
Postgres and Redis) and the LiteLLM proxy, side by side, several rounds, medians.

    python -m bench.run [--rounds 3] [--duration 5] [--no-litellm] [--soak 100000]
                        [--compare REV]

`--compare REV` adds Gatewayz as it was at REV (a git revision, checked out in a temporary
worktree with its own database) as one more target, measured in the same rounds right
after the current tree's: the A/B that whole runs minutes apart cannot give on a noisy
machine.

The load generator (wrk, and an aiohttp client for stream TTFB) and the upstream run on
core 0, the server under test on core 1 (taskset), so figures are per core.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench import procstat, report

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PY = sys.executable
LOAD_CORE, SERVER_CORE = "0", "1"
UPSTREAM_PORT, FLOOR_PORT, GATEWAYZ_PORT, LITELLM_PORT, BASELINE_PORT = range(9100, 9105)
LITELLM = BENCH / ".venv-litellm" / "bin" / "litellm"
BENCH_DB = "gatewayz_bench"
# The revision compared against keeps its state in a Redis database of its own: sharing one,
# the two would share user ids' credit and limits, and one's usage consumer would write the
# other's requests (into its own database, on its own CPU).
BASELINE_REDIS_DB = 12
REDIS_DB = 13  # the current tree's
# How every server under test is run (with its app and port after these).
UVICORN = [PY, "-m", "uvicorn", "--no-access-log", "--log-level", "warning", "--no-proxy-headers"]
PROMPT = [{"role": "user", "content": "Say hello in twenty words."}]

TTFB_RATE = 200  # streams/s for the open-loop time to first byte: below every server's limit
SCENARIOS = [  # name, stream, connections
    ("json c1", False, 1),
    ("json c16", False, 16),
    ("json c64", False, 64),
    ("stream c16", True, 16),
    ("stream c64", True, 64),
]


@dataclass
class Target:
    name: str
    url: str  # the chat completions URL
    auth: str
    model: str
    slow_model: str
    proc: subprocess.Popen[bytes] | None = None
    side_services: bool = False  # Postgres + Redis CPU counted beside the server's
    body_files: dict[bool, str] = field(default_factory=dict)

    def pids(self) -> list[int]:
        assert self.proc is not None
        return procstat.tree(self.proc.pid)


def _pinned(core: str, cmd: list[str]) -> list[str]:
    return ["taskset", "-c", core, *cmd]


def _start(
    cmd: list[str],
    health: str,
    env: dict[str, str] | None = None,
    wait: float = 60,
    cwd: Path = ROOT,
) -> subprocess.Popen[bytes]:
    log = open(tempfile.mktemp(prefix="bench-", suffix=".log"), "wb")  # noqa: SIM115
    proc = subprocess.Popen(cmd, cwd=cwd, env={**os.environ, **(env or {})}, stdout=log, stderr=log)
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{cmd[3:6]} exited; see {log.name}")
        try:
            if httpx.get(health, timeout=1).status_code < 500:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{cmd} did not start; see {log.name}")


def _gatewayz_env(
    db: str = BENCH_DB, root: Path = ROOT, redis_db: int = REDIS_DB
) -> dict[str, str]:
    return {
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key-not-for-production-0123456789",
        "GATEWAYZ_KEY_PEPPER": "bench-pepper",
        "GATEWAYZ_UPSTREAM_NETWORKS": "loopback",  # the bench's upstream
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{db}",
        "REDIS_URL": f"redis://127.0.0.1:6379/{redis_db}",
        "GATEWAYZ_BENCH_UPSTREAM_KEY": "sk-bench-upstream",
        "ALLOWED_HOSTS": "*",
        "LOG_LEVEL": "WARNING",
        "GATEWAYZ_VAR_DIR": str(root / "var" / "bench"),
        # Another checkout runs its own code only (bench/isolate/sitecustomize.py).
        **({"PYTHONPATH": str(ROOT / "bench" / "isolate")} if root != ROOT else {}),
        # Rate limits stay on (their checks are part of the measured path) at caps the
        # benchmark's load never reaches.
        **{
            name: "1000000000"
            for name in (
                "GATEWAYZ_KEY_RPM",
                "GATEWAYZ_KEY_TPM",
                "GATEWAYZ_KEY_CONCURRENT",
            )  # the limits that are on by default
        },
    }


def _gatewayz_setup(db: str = BENCH_DB, root: Path = ROOT, redis_db: int = REDIS_DB) -> str:
    """Migrates the bench database (first time only), loads the catalog, returns a key."""
    env = {**os.environ, **_gatewayz_env(db, root, redis_db)}
    exists = subprocess.run(
        [
            "psql",
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname='{db}'",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    if not exists:
        subprocess.run(["createdb", "-h", "127.0.0.1", "-U", "postgres", db], check=True)
    manage = [PY, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=root, env=env, check=True)
    subprocess.run(
        [*manage, "load_catalog", str(BENCH / "catalog.toml")],
        cwd=root,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    out = subprocess.run(
        [*manage, "create_api_user", "bench@gatewayz.local", "--top-up-to", "100000"],
        cwd=root,
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout.strip().splitlines()[-1]


def redis_flush() -> None:
    """Empties the bench's own Redis databases: credit and limits start afresh."""
    for db in (REDIS_DB, BASELINE_REDIS_DB):
        subprocess.run(["redis-cli", "-n", str(db), "flushdb"], check=True, capture_output=True)


def _body_file(model: str, stream: bool) -> str:
    body = {"model": model, "messages": PROMPT, "max_tokens": 64}
    if stream:
        body["stream"] = True
    path = tempfile.mktemp(prefix="bench-body-", suffix=".json")
    Path(path).write_text(json.dumps(body))
    return path


def wrk(target: Target, stream: bool, connections: int, seconds: float) -> dict[str, float]:
    env = {**os.environ, "BODY_FILE": target.body_files[stream], "AUTH": target.auth}
    cmd = _pinned(
        LOAD_CORE,
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            str(BENCH / "post.lua"),
            target.url,
        ],
    )
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("WRKJSON "))
    return json.loads(line[len("WRKJSON ") :])


def measure(target: Target, stream: bool, connections: int, seconds: float) -> dict[str, float]:
    pids = target.pids()
    side = procstat.by_name("postgres", "redis-server") if target.side_services else []
    cpu0, side0 = procstat.cpu_seconds(pids), procstat.cpu_by_pid(side)
    result = wrk(target, stream, connections, seconds)
    cpu1, side1 = procstat.cpu_seconds(pids), procstat.cpu_by_pid(side)
    n = max(result["requests"], 1)
    failed = result["errors"] + result["non2xx"]
    if target.name != "litellm" and failed > n // 1000:
        # A figure measured on refusals (a 429, a 5xx) would flatter the server: stop.
        raise RuntimeError(f"{target.name}: {failed} of {n} requests failed; see its log")
    result["rps"] = n / (result["duration_us"] / 1e6)
    result["cpu_us"] = (cpu1 - cpu0) / n * 1e6
    if target.side_services:
        result["db_cpu_us"] = procstat.cpu_delta(side0, side1) / n * 1e6
    if stream:
        cmd = _pinned(
            LOAD_CORE,
            [
                PY,
                "-m",
                "bench.streams",
                "ttfb",
                target.url,
                "--auth",
                target.auth,
                "--model",
                target.model,
                "--rate",
                str(TTFB_RATE),
                "--requests",
                str(TTFB_RATE * 2),
            ],
        )
        out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
        ttfb = json.loads(out.strip().splitlines()[-1])
        if target.name != "litellm" and ttfb["errors"]:
            raise RuntimeError(f"{target.name}: {ttfb['errors']} streams failed in the TTFB run")
        result["ttfb_errors"] = ttfb.pop("errors")
        result.update(ttfb)
    return result


def hold_streams(target: Target, streams: int) -> dict[str, float]:
    cmd = _pinned(
        LOAD_CORE,
        [
            PY,
            "-m",
            "bench.streams",
            "hold",
            target.url,
            "--auth",
            target.auth,
            "--model",
            target.slow_model,
            "--streams",
            str(streams),
        ],
    )
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _baseline_checkout(rev: str) -> tuple[str, Path]:
    """REV checked out in a temporary worktree: (its short hash, the tree). It runs on this
    venv (same dependencies assumed) and on its own database, migrated by its own code."""
    short = subprocess.run(
        ["git", "rev-parse", "--short", rev], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.strip()
    tree = Path(tempfile.mkdtemp(prefix=f"gatewayz-{short}-"))
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(tree), short],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    return short, tree


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--soak", type=int, default=100_000, help="requests for the memory soak")
    parser.add_argument("--streams", type=int, default=1000, help="streams held open at once")
    parser.add_argument("--no-litellm", action="store_true")
    parser.add_argument("--compare", metavar="REV", help="also measure Gatewayz at this revision")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("wrk is missing: apt-get install wrk")

    base = "http://127.0.0.1:{}/v1/chat/completions"
    redis_flush()
    key = _gatewayz_setup()
    targets = [
        Target("direct", base.format(UPSTREAM_PORT), "", "bench", "slow"),
        Target("floor", base.format(FLOOR_PORT), "", "bench", "slow"),
        Target(
            "gatewayz",
            base.format(GATEWAYZ_PORT),
            key,
            "bench/model",
            "bench/slow",
            side_services=True,
        ),
    ]
    baseline = _baseline_checkout(args.compare) if args.compare else None
    if baseline is not None:
        rev, tree = baseline
        targets.append(
            Target(
                f"gatewayz@{rev}",
                base.format(BASELINE_PORT),
                _gatewayz_setup(f"{BENCH_DB}_{rev}", tree, BASELINE_REDIS_DB),
                "bench/model",
                "bench/slow",
                side_services=True,
            )
        )
    use_litellm = not args.no_litellm and LITELLM.exists()
    if use_litellm:
        targets.append(
            Target(
                "litellm",
                base.format(LITELLM_PORT),
                "sk-bench-litellm",
                "bench/model",
                "bench/slow",
            )
        )
    for t in targets:
        t.body_files = {False: _body_file(t.model, False), True: _body_file(t.model, True)}

    procs = []
    # Postgres and Redis share the load generator's core: the server's core is its own.
    services = procstat.pin(procstat.by_name("postgres", "redis-server"), LOAD_CORE)
    try:
        upstream = _start(
            _pinned(LOAD_CORE, [PY, "-m", "bench.upstream", "--port", str(UPSTREAM_PORT)]),
            f"http://127.0.0.1:{UPSTREAM_PORT}/health",
        )
        procs.append(upstream)
        targets[0].proc = upstream
        targets[1].proc = _start(
            _pinned(SERVER_CORE, [*UVICORN, "bench.floor:app", "--port", str(FLOOR_PORT)]),
            f"http://127.0.0.1:{FLOOR_PORT}/health",
        )
        targets[2].proc = _start(
            _pinned(
                # The inference workers' entry point: what serves /v1/ in production.
                SERVER_CORE,
                [*UVICORN, "config.asgi_inference:application", "--port", str(GATEWAYZ_PORT)],
            ),
            f"http://127.0.0.1:{GATEWAYZ_PORT}/v1/models",
            _gatewayz_env(),
        )
        procs += [targets[1].proc, targets[2].proc]
        if baseline is not None:
            rev, tree = baseline
            targets[3].proc = _start(
                _pinned(
                    SERVER_CORE,
                    [*UVICORN, "config.asgi_inference:application", "--port", str(BASELINE_PORT)],
                ),
                f"http://127.0.0.1:{BASELINE_PORT}/v1/models",
                _gatewayz_env(f"{BENCH_DB}_{rev}", tree, BASELINE_REDIS_DB),
                cwd=tree,  # its own code: `-m uvicorn` imports from the working directory
            )
            procs.append(targets[3].proc)
        if use_litellm:
            targets[-1].proc = _start(
                _pinned(
                    SERVER_CORE,
                    [
                        str(LITELLM),
                        "--config",
                        str(BENCH / "litellm.yaml"),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(LITELLM_PORT),
                        "--num_workers",
                        "1",
                    ],
                ),
                f"http://127.0.0.1:{LITELLM_PORT}/health/liveliness",
                {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "LITELLM_LOG": "ERROR"},
                wait=180,
            )
            procs.append(targets[-1].proc)

        memory: dict[str, dict[str, float]] = {}
        for t in targets[1:]:
            wrk(t, False, 16, 2)  # warm up
            memory[t.name] = {"rss_start_mb": procstat.rss_mb(t.pids())}

        rounds: list[dict[str, dict[str, dict[str, float]]]] = []
        for r in range(args.rounds):
            this: dict[str, dict[str, dict[str, float]]] = {}
            for name, stream, conns in SCENARIOS:
                for t in targets:
                    this.setdefault(t.name, {})[name] = measure(t, stream, conns, args.duration)
                    print(
                        f"round {r + 1} {name:11} {t.name:9} {this[t.name][name]['rps']:9.0f} rps "
                        f"{this[t.name][name]['cpu_us']:8.0f} cpu-us",
                        flush=True,
                    )
            rounds.append(this)

        held = {t.name: hold_streams(t, args.streams) for t in targets[1:3]}
        gw = targets[2]
        soak_rps = statistics.median(r["gatewayz"]["json c16"]["rps"] for r in rounds)
        before = procstat.rss_mb(gw.pids())
        wrk(gw, False, 16, math.ceil(args.soak / max(soak_rps, 1)))
        for t in targets[1:]:
            memory[t.name]["rss_peak_mb"] = procstat.rss_mb(t.pids(), "VmHWM")
        memory["gatewayz"].update(
            rss_before_soak_mb=before,
            rss_after_soak_mb=procstat.rss_mb(gw.pids()),
            soak_requests=args.soak,
        )
    finally:
        if baseline is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(baseline[1])], cwd=ROOT)
        procstat.unpin(services)
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()

    results = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "rounds": rounds,
        "memory": memory,
        "held_streams": held,
        "duration_s": args.duration,
    }
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (BENCH / "results").mkdir(exist_ok=True)
    (BENCH / "results" / f"{stamp}.json").write_text(json.dumps(results, indent=1))
    table = report.render(results)
    (BENCH / "results" / f"{stamp}.md").write_text(table)
    report.update_readme(BENCH / "README.md", table, f"results/{stamp}.json")
    print(table)


if __name__ == "__main__":
    main()
