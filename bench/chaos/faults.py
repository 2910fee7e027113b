"""Seeded faults at random times, each on a process the soak started, by its PID:

| fault | what happens |
|---|---|
| worker-kill | SIGKILL to one or both inference workers; uvicorn's supervisor respawns them |
| celery-kill | SIGKILL to the Celery worker (its process group); restarted 3 s later |
| redis-restart | SIGKILL to redis-server; restarted at once from its append-only file |
| redis-empty-pg-down | Postgres down; 3 s on, Redis killed, started empty; Postgres back 8 s on |
| pg-restart | Postgres immediate shutdown, started again at once |
| pg-outage | Postgres immediate shutdown, started again 20 s later |
| breaker-burst | 30 failing requests to one model, then a client asking until it serves again |

Blocking steps run in threads so that the load goes on meanwhile.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time
from dataclasses import dataclass, field

from bench.chaos.load import Load
from bench.chaos.topology import Topology

PG_OUTAGE_SECONDS = 20.0
KINDS = (
    "worker-kill",
    "celery-kill",
    "redis-restart",
    "redis-empty-pg-down",
    "pg-restart",
    "pg-outage",
    "breaker-burst",
)
# Rough lengths, to spread the faults over the run.
LENGTH = {
    "worker-kill": 1,
    "celery-kill": 4,
    "redis-restart": 1,
    "redis-empty-pg-down": 13,
    "pg-restart": 2,
    "pg-outage": PG_OUTAGE_SECONDS + 1,
    "breaker-burst": 1,
}
WARM_UP, CALM_TAIL = 10.0, 20.0  # seconds without faults at the start and the end
MIN_GAP = 5.0  # between the end of one fault and the next


@dataclass
class FaultEvent:
    kind: str
    planned: float
    started: float = 0.0
    ended: float = 0.0
    detail: str = ""
    failed: str = ""  # a fault the soak could not apply or recover from


@dataclass
class FaultRunner:
    topology: Topology
    load: Load
    events: list[FaultEvent] = field(default_factory=list)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    def plan(self, kinds: tuple[str, ...], seconds: float, seed: int) -> None:
        """Every kind `rounds` times, in a seeded order, spread over the run."""
        rng = random.Random(f"{seed}:faults")
        rounds = max(1, round(seconds / 240))
        order = [k for _ in range(rounds) for k in rng.sample(kinds, len(kinds))]
        busy = sum(LENGTH[k] for k in order)
        free = max(0.0, seconds - WARM_UP - CALM_TAIL - busy - MIN_GAP * len(order))
        cuts = sorted(rng.uniform(0, free) for _ in order)
        at = WARM_UP
        previous = 0.0
        for kind, cut in zip(order, cuts, strict=True):
            at += cut - previous
            previous = cut
            self.events.append(FaultEvent(kind, at))
            at += LENGTH[kind] + MIN_GAP

    async def run(self) -> None:
        for event in self.events:
            wait = event.planned - (time.monotonic() - self.load.t0)
            if wait > 0:
                await asyncio.sleep(wait)
            if self.load.state.stop:
                return
            event.started = time.monotonic() - self.load.t0
            try:
                await getattr(self, "_" + event.kind.replace("-", "_"))(event)
            except Exception as exc:
                event.failed = f"{type(exc).__name__}: {exc}"
            event.ended = time.monotonic() - self.load.t0

    async def finish(self) -> None:
        for task in self.tasks:
            await task

    # --- the faults ----------------------------------------------------------------------
    async def _worker_kill(self, event: FaultEvent) -> None:
        workers = self.topology.inference_workers()
        rng = random.Random(f"{self.load.seed}:{event.planned}")
        victims = workers if rng.random() < 0.3 else workers[:1]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        took = await asyncio.to_thread(self.topology.wait_workers, 2, 20, set(victims))
        event.detail = f"killed {len(victims)} of {len(workers)}; back to 2 in {took:.1f} s"

    async def _celery_kill(self, event: FaultEvent) -> None:
        await asyncio.to_thread(self.topology.kill_group, "celery-worker")
        await asyncio.sleep(3)
        self.topology.start_celery_worker()
        event.detail = "killed; restarted after 3 s"

    async def _redis_restart(self, event: FaultEvent) -> None:
        redis = self.topology.redis
        started = time.monotonic()
        await asyncio.to_thread(redis.kill)
        await asyncio.to_thread(redis.up)
        event.detail = f"killed; back from its AOF in {time.monotonic() - started:.1f} s"

    async def _redis_empty_pg_down(self, event: FaultEvent) -> None:
        pg, redis = self.topology.pg, self.topology.redis
        self.load.state.pg_down = True
        try:
            await asyncio.to_thread(pg.down)
            await asyncio.sleep(3)
            await asyncio.to_thread(redis.kill)
            redis.wipe()
            await asyncio.to_thread(redis.up)
            await asyncio.sleep(8)
        finally:
            await asyncio.to_thread(pg.up)
            self.load.state.pg_down = False
        event.detail = "postgres down 11 s; redis restarted empty 3 s in"

    async def _pg_restart(self, event: FaultEvent) -> None:
        started = time.monotonic()
        self.load.state.pg_down = True
        try:
            await asyncio.to_thread(self.topology.pg.down)
        finally:
            await asyncio.to_thread(self.topology.pg.up)
            self.load.state.pg_down = False
        event.detail = f"down {time.monotonic() - started:.1f} s"

    async def _pg_outage(self, event: FaultEvent) -> None:
        self.load.state.pg_down = True
        try:
            await asyncio.to_thread(self.topology.pg.down)
            await asyncio.sleep(PG_OUTAGE_SECONDS)
        finally:
            await asyncio.to_thread(self.topology.pg.up)
            self.load.state.pg_down = False
        event.detail = f"down {PG_OUTAGE_SECONDS:.0f} s"

    async def _breaker_burst(self, event: FaultEvent) -> None:
        async def burst() -> None:
            await self.load.burst()
            event.ended = time.monotonic() - self.load.t0

        self.tasks.append(asyncio.create_task(burst()))
        event.detail = "30 failing requests to chaos/burst, then a client until it serves"
