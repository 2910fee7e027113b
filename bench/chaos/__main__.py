"""The chaos soak: the production topology as processes on its own Postgres and Redis, a
seeded mixed load, seeded faults, a drain, then the money and availability invariants
(docs/chaos.md). Exits non-zero on any failure.

    python -m bench.chaos [--minutes 2] [--seed 22] [--faults worker-kill,pg-outage,...]
                          [--concurrency 16] [--rate 40] [--left-rule to_end|until_left]
                          [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench.chaos import checks, rules
from bench.chaos.drain import drain
from bench.chaos.faults import KINDS, FaultRunner
from bench.chaos.load import Load
from bench.chaos.report import check_lines, fault_lines, summary, timeline
from bench.chaos.services import OwnPostgres, OwnRedis
from bench.chaos.topology import DB, HOLD_TTL_SECONDS, Account, Topology

ACCOUNTS = {  # pool: (how many, credit each)
    "regular": (40, "50"),
    "low": (4, "0.02"),  # runs out: 402s, and a balance that must stay ≥ 0
    "cold": (12, "5"),  # first used while Postgres is down: keys no process has cached
    "leaver": (2, "50"),  # clients that give up before a whole answer
}
# The drain waits for a dead worker's holds (the hold TTL, then beat's 5 s tick) and for its
# unacknowledged usage entries (claimed by another worker after a minute).
DRAIN_SECONDS = HOLD_TTL_SECONDS + 60


def say(text: str) -> None:
    print(text, flush=True)


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos")
    parser.add_argument(
        "--minutes", type=float, default=float(os.environ.get("CHAOS_MINUTES") or 2)
    )
    parser.add_argument("--seed", type=int, default=int(os.environ.get("CHAOS_SEED") or 22))
    parser.add_argument("--faults", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--concurrency", type=int, default=16, help="clients at once")
    parser.add_argument("--rate", type=float, default=40, help="requests per second, in all")
    parser.add_argument("--left-rule", choices=("to_end", "until_left"), default=rules.LEFT_RULE)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - set(KINDS) - {""}
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}; known: {', '.join(KINDS)}")
    return args


async def _soak(load: Load, runner: FaultRunner, seconds: float) -> None:
    load.t0 = time.monotonic()
    faults = asyncio.create_task(runner.run())
    await load.run(seconds)
    load.state.stop = True  # a fault under way still finishes (and restores what it broke)
    await faults
    await runner.finish()


def main() -> None:
    args = _args()
    seconds = args.minutes * 60
    kinds = tuple(k for k in args.faults.split(",") if k)
    run_dir = Path(tempfile.mkdtemp(prefix="gatewayz-chaos-"))
    run_dir.chmod(0o755)  # Postgres runs as its own user when we are root
    (run_dir / "logs").mkdir()
    (run_dir / "var").mkdir()
    topology = Topology(run_dir, OwnPostgres(run_dir / "pg"), OwnRedis(run_dir / "redis"))
    passed = False
    try:
        say(
            f"chaos: seed {args.seed}, {args.minutes:g} min, faults {', '.join(kinds) or 'none'}; "
            f"run directory {run_dir}"
        )
        topology.redis.up()
        topology.start_mock()
        started = time.monotonic()
        topology.prepare_database()
        say(f"  database migrated and catalog loaded in {time.monotonic() - started:.0f} s")
        plan = [
            {"name": f"{pool}-{i}", "credit": credit}
            for pool, (n, credit) in ACCOUNTS.items()
            for i in range(n)
        ]
        accounts = topology.create_accounts(plan)
        pools: dict[str, list[Account]] = {pool: [] for pool in ACCOUNTS}
        for account in accounts:
            pools[account.name.rsplit("-", 1)[0]].append(account)
        topology.start_inference()
        topology.start_web()
        topology.start_celery_worker()
        topology.start_beat()
        say(
            f"  up: inference {topology.inference_url} (workers "
            f"{topology.inference_workers()}), web {topology.web_url}, celery worker + beat, "
            f"postgres :{topology.pg.port}, redis :{topology.redis.port}"
        )

        load = Load(topology.inference_url, pools, args.seed, args.concurrency, args.rate)
        runner = FaultRunner(topology, load)
        runner.plan(kinds, seconds, args.seed)
        say("  faults planned at " + ", ".join(f"{e.kind}@{e.planned:.0f}s" for e in runner.events))
        asyncio.run(_soak(load, runner, seconds))
        say(f"  load done: {len(load.records)} requests; draining (up to {DRAIN_SECONDS} s)")
        drained = drain(topology.redis.client(), topology.pg.url(DB), DRAIN_SECONDS, say)

        facts = checks.read_facts(
            topology.pg.url(DB), topology.redis.client(), [a.user_id for a in accounts]
        )
        records = load.records
        results = [
            checks.ledger_equals_log(facts, accounts),
            checks.balances_not_negative(facts, accounts),
            checks.holds_released(facts, accounts),
            checks.one_row_per_answer(facts, records),
            checks.charge_equals_told(facts, records),
            checks.left_streams_billed(facts, records, args.left_rule),
            checks.no_500_and_documented_5xx(facts, records),
        ]
        breaker = checks.breaker_recovered(load.bursts)
        if breaker is not None:
            results.append(breaker)
        results.append(checks.left_json_logged(facts, records, pools["leaver"], args.left_rule))
        cold = checks.cold_keys(records)
        if cold is not None:
            results.append(cold)
        failed_faults = [e for e in runner.events if e.failed]
        results.append(
            checks.Check(
                "every fault applied and recovered",
                not failed_faults,
                f"{len(runner.events)} faults",
                [f"{e.kind}: {e.failed}" for e in failed_faults],
            )
        )
        results.append(checks.Check("drained", drained.settled, f"in {drained.seconds:.0f} s"))
        lost = {r.request_id for r in records if r.request_id and r.request_id not in facts.rows}
        lost &= {
            r.request_id
            for r in records
            if rules.row_expected(r.status, r.kind == "cold", r.error_message)
        }
        report = "\n\n".join(
            [
                "faults:\n" + fault_lines(runner.events),
                "timeline (requests by the 10 s window they started in):\n"
                + timeline(records, runner.events, lost),  # type: ignore[arg-type]
                "checks:\n" + check_lines(results),
                summary(records, results, len(accounts), seconds),
            ]
        )
        say("\n" + report)
        (run_dir / "report.md").write_text(report + "\n")
        with open(run_dir / "records.jsonl", "w") as out:
            for rec in records:
                out.write(json.dumps(dataclasses.asdict(rec), default=str) + "\n")
        passed = all(c.ok for c in results)
    finally:
        topology.stop_all()
        for data in ("pg", "redis", "var", "metrics"):
            shutil.rmtree(run_dir / data, ignore_errors=True)
        if passed and not args.keep:
            shutil.rmtree(run_dir, ignore_errors=True)
        else:
            say(f"logs, report and records kept in {run_dir}")
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
