"""Instructions per request: the floor proxy and Gatewayz (and a revision, with --compare)
under valgrind's callgrind, which counts the user-space instructions a process executes.

    python -m bench.instructions [--seconds 10] [--compare REV] [--stream]

CPU time on a shared machine moves ±20% from one run to the next; an instruction count does
not (the same build and load give the same count within ~1%), so this is the measure that
ranks a change of a few percent. What it leaves out: the kernel's work (system calls, the
network stack) and how fast each instruction runs (cache misses).

Each server runs under callgrind (~50× slower, so it serves ~100 requests a second) on the
server core; wrk loads it at 16 connections from the load core. Its counters are zeroed
after a warm-up, then read over an idle window and over a loaded one. The idle rate (the
background work: cache invalidation polls, the usage consumer waiting) times the loaded
window's length is taken off, since at this slow pace it would otherwise weigh ~10× what it
weighs per request at full speed.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench import run

IDLE_SECONDS = 5
INFERENCE_APP = "config.asgi_inference:application"


def _models(port: int) -> str:
    return f"http://127.0.0.1:{port}/v1/models"  # answers once the gateway is ready


@dataclass
class Count:
    name: str
    requests: int
    instructions_per_request: float


def _totals(out: str) -> list[int]:
    """Each dump's instruction total, in dump order."""
    parts = sorted(glob.glob(out + ".*"), key=lambda f: int(f.rsplit(".", 1)[1]))
    totals = []
    for part in parts:
        for line in Path(part).read_text().splitlines():
            if line.startswith("summary:"):
                totals.append(int(line.split()[1]))
    return totals


def _dump(pid: int) -> float:
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    return time.monotonic()


def count(
    name: str,
    target: run.Target,
    app: str,
    port: int,
    health: str,
    stream: bool,
    seconds: int,
    env: dict[str, str] | None = None,
    cwd: Path = run.ROOT,
) -> Count:
    out = tempfile.mktemp(prefix=f"callgrind-{name}-")
    callgrind = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", "--dump-instr=no"]
    cmd = [*callgrind, *run.UVICORN, app, "--port", str(port)]
    target.proc = run._start(run._pinned(run.SERVER_CORE, cmd), health, env, wait=300, cwd=cwd)
    try:
        run.wrk(target, stream, 16, 5)  # warm up: imports, caches, the key, the catalog
        pid = target.proc.pid
        subprocess.run(["callgrind_control", "-z", str(pid)], check=True, capture_output=True)
        started = time.monotonic()
        time.sleep(IDLE_SECONDS)
        idle_end = _dump(pid)
        result = run.wrk(target, stream, 16, seconds)
        time.sleep(1)  # the last requests are settled and written
        loaded_end = _dump(pid)
        time.sleep(1)
        idle, loaded = _totals(out)[-2:]
        idle_rate = idle / (idle_end - started)
        work = loaded - idle_rate * (loaded_end - idle_end)
        failed = result["errors"] + result["non2xx"]
        if failed:
            raise RuntimeError(f"{name}: {failed} requests failed")
        return Count(name, int(result["requests"]), work / result["requests"])
    finally:
        target.proc.terminate()
        target.proc.wait()
        for part in glob.glob(out + "*"):
            os.remove(part)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--stream", action="store_true", help="streams (20 chunks), not JSON")
    parser.add_argument("--compare", metavar="REV", help="also count Gatewayz at this revision")
    args = parser.parse_args()
    base = "http://127.0.0.1:{}/v1/chat/completions"
    run.redis_flush()
    key = run._gatewayz_setup()
    serve_upstream = [run.PY, "-m", "bench.upstream", "--port", str(run.UPSTREAM_PORT)]
    upstream = run._start(
        run._pinned(run.LOAD_CORE, serve_upstream),
        f"http://127.0.0.1:{run.UPSTREAM_PORT}/health",
    )
    counts = []
    tree: Path | None = None
    try:
        floor = run.Target("floor", base.format(run.FLOOR_PORT), "", "bench", "slow")
        gatewayz = run.Target("gatewayz", base.format(run.GATEWAYZ_PORT), key, "bench/model", "")
        floor_health = f"http://127.0.0.1:{run.FLOOR_PORT}/health"
        jobs = [
            (floor, "bench.floor:app", run.FLOOR_PORT, floor_health, None, run.ROOT),
            (
                gatewayz,
                INFERENCE_APP,
                run.GATEWAYZ_PORT,
                _models(run.GATEWAYZ_PORT),
                run._gatewayz_env(),
                run.ROOT,
            ),
        ]
        if args.compare:
            rev, tree = run._baseline_checkout(args.compare)
            db = f"{run.BENCH_DB}_{rev}"
            other = run.Target(
                f"gatewayz@{rev}",
                base.format(run.BASELINE_PORT),
                run._gatewayz_setup(db, tree, run.BASELINE_REDIS_DB),
                "bench/model",
                "",
            )
            env = run._gatewayz_env(db, tree, run.BASELINE_REDIS_DB)
            port = run.BASELINE_PORT
            jobs.append((other, INFERENCE_APP, port, _models(port), env, tree))
        for target, app, port, health, env, cwd in jobs:
            target.body_files = {s: run._body_file(target.model, s) for s in (False, True)}
            measured = count(
                target.name, target, app, port, health, args.stream, args.seconds, env, cwd
            )
            counts.append(measured)
            print(f"{counts[-1].name}: {counts[-1].instructions_per_request:,.0f}", flush=True)
    finally:
        upstream.terminate()
        if tree is not None:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=run.ROOT)
    floor_count = counts[0].instructions_per_request
    print(f"\ninstructions per request ({'stream' if args.stream else 'json'} c16), idle removed:")
    for c in counts:
        ratio = c.instructions_per_request / floor_count
        print(
            f"  {c.name:22} {c.instructions_per_request:>12,.0f}  {ratio:5.2f}× floor  "
            f"({c.requests} requests)"
        )
    if len(counts) == 3:
        change = counts[1].instructions_per_request / counts[2].instructions_per_request
        print(f"  gatewayz ÷ {counts[2].name}: {change:.3f}")
    print(json.dumps([c.__dict__ for c in counts]))


if __name__ == "__main__":
    main()
