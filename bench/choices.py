"""Choices made by measurement: the upstream HTTP client (the floor proxy with each client)
and the ASGI server (Gatewayz under each server), same rounds, medians.

    python -m bench.choices [--rounds 3] [--duration 5]
"""

from __future__ import annotations

import argparse
import statistics
from datetime import UTC, datetime

from bench import procstat
from bench.run import (
    BENCH,
    FLOOR_PORT,
    GATEWAYZ_PORT,
    LOAD_CORE,
    PY,
    SERVER_CORE,
    UPSTREAM_PORT,
    Target,
    _body_file,
    _gatewayz_env,
    _gatewayz_setup,
    _pinned,
    _start,
    measure,
    wrk,
)

CLIENTS = ["aiohttp", "httpx", "httpx-aiohttp"]
SERVERS = {
    "uvicorn": [
        PY,
        "-m",
        "uvicorn",
        "config.asgi:application",
        "--no-access-log",
        "--log-level",
        "warning",
        "--port",
        "{port}",
    ],
    "granian": [
        PY,
        "-m",
        "granian",
        "--interface",
        "asgi",
        "--loop",
        "uvloop",
        "--workers",
        "1",
        "--log-level",
        "warning",
        "--port",
        "{port}",
        "config.asgi:application",
    ],
    "daphne": [PY, "-m", "daphne", "-p", "{port}", "config.asgi:application"],
}
SCENARIOS = [("json c16", False, 16), ("stream c16", True, 16)]
URL = "http://127.0.0.1:{}/v1/chat/completions"


def _run(label: str, target: Target, rounds: int, seconds: int, table: dict) -> None:
    try:
        wrk(target, False, 16, 2)  # warm up
        for name, stream, conns in SCENARIOS:
            results = [measure(target, stream, conns, seconds) for _ in range(rounds)]
            table[(label, name)] = {
                k: statistics.median(r[k] for r in results) for k in ("rps", "cpu_us", "p50_us")
            }
            print(label, name, table[(label, name)], flush=True)
    finally:
        assert target.proc is not None
        target.proc.terminate()
        target.proc.wait(10)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=int, default=5)
    args = parser.parse_args()
    key = _gatewayz_setup()
    upstream = _start(
        _pinned(LOAD_CORE, [PY, "-m", "bench.upstream", "--port", str(UPSTREAM_PORT)]),
        f"http://127.0.0.1:{UPSTREAM_PORT}/health",
    )
    table: dict[tuple[str, str], dict[str, float]] = {}
    services = procstat.pin(procstat.by_name("postgres", "redis-server"), LOAD_CORE)
    try:
        for client in CLIENTS:
            target = Target(f"floor, {client}", URL.format(FLOOR_PORT), "", "bench", "slow")
            target.body_files = {s: _body_file("bench", s) for s in (False, True)}
            cmd = [
                PY,
                "-m",
                "uvicorn",
                "bench.floor:app",
                "--no-access-log",
                "--log-level",
                "warning",
                "--port",
                str(FLOOR_PORT),
            ]
            target.proc = _start(
                _pinned(SERVER_CORE, cmd),
                f"http://127.0.0.1:{FLOOR_PORT}/health",
                {"FLOOR_CLIENT": client},
            )
            _run(target.name, target, args.rounds, args.duration, table)
        for server, template in SERVERS.items():
            target = Target(
                f"gatewayz, {server}",
                URL.format(GATEWAYZ_PORT),
                key,
                "bench/model",
                "bench/slow",
                side_services=True,
            )
            target.body_files = {s: _body_file("bench/model", s) for s in (False, True)}
            cmd = [part.replace("{port}", str(GATEWAYZ_PORT)) for part in template]
            target.proc = _start(
                _pinned(SERVER_CORE, cmd),
                f"http://127.0.0.1:{GATEWAYZ_PORT}/v1/models",
                _gatewayz_env(),
            )
            _run(target.name, target, args.rounds, args.duration, table)
    finally:
        procstat.unpin(services)
        upstream.terminate()

    lines = [
        f"Run {datetime.now(UTC).isoformat(timespec='seconds')}: {args.rounds} rounds of "
        f"{args.duration} s, medians; one process on core 1.",
        "",
        "| what | scenario | RPS | p50 ms | CPU µs/req |",
        "|---|---|--:|--:|--:|",
    ]
    for (label, name), r in table.items():
        lines.append(
            f"| {label} | {name} | {r['rps']:.0f} | {r['p50_us'] / 1000:.2f} | {r['cpu_us']:.0f} |"
        )
    text = "\n".join(lines) + "\n"
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    (BENCH / "results" / f"{stamp}-choices.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
