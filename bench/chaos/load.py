"""The soak's seeded mixed load: both routes, models of both upstream protocols, streams
and whole answers, upstream faults (`!mock` directives), clients that leave mid-stream or
before a whole answer, keys first used during a database outage, and a breaker-opening
burst. Each client task has its own random generator, seeded from the soak's seed."""

from __future__ import annotations

import asyncio
import json
import random
import time
from dataclasses import dataclass, field

import httpx

from bench.chaos.client import Record, send
from bench.chaos.topology import Account

PLAIN_MODELS = ("chaos/gpt", "chaos/claude", "chaos/failover")
# What a client does, with its weight.
MIX = {"plain": 62, "fault": 18, "left": 14, "left-json": 3, "cold": 3}
LEFT_CHUNKS, LEFT_CHUNK_SECONDS = 60, 0.05
BURST_MODEL = "chaos/burst"
WORDS = ("alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa")


@dataclass
class LoadState:
    """What the fault runner tells the load: cold keys are only tried during an outage."""

    pg_down: bool = False
    stop: bool = False


@dataclass
class Load:
    base_url: str
    accounts: dict[str, list[Account]]  # pools: regular, low, cold, leaver
    seed: int
    concurrency: int
    rate: float  # requests per second, over all clients
    state: LoadState = field(default_factory=LoadState)
    records: list[Record] = field(default_factory=list)
    bursts: list[list[Record]] = field(default_factory=list)  # each burst's requests
    t0: float = field(default_factory=time.monotonic)
    _seq: int = 0

    def _record(
        self,
        kind: str,
        account: Account,
        route: str,
        model: str,
        stream: bool,
        include_usage: bool,
        directive: str,
    ) -> Record:
        self._seq += 1
        rec = Record(
            self._seq,
            kind,
            account.name,
            account.user_id,
            route,
            model,
            stream,
            include_usage,
            directive,
            time.monotonic() - self.t0,
        )
        self.records.append(rec)
        return rec

    async def _one(self, client: httpx.AsyncClient, rng: random.Random) -> None:
        kind = rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "cold" and not (self.state.pg_down and self.accounts["cold"]):
            kind = "plain"
        route = rng.choice(("chat", "chat", "messages"))
        stream = rng.random() < 0.5
        include_usage = route == "chat" and rng.random() < 0.8
        pool = "low" if rng.random() < 0.08 else "regular"
        text = f"chaos {self._seq} " + " ".join(rng.choices(WORDS, k=rng.randint(2, 12)))
        directive: dict[str, object] = {}
        leave_after: int | None = None
        leave_seconds: float | None = None
        model = rng.choice(PLAIN_MODELS)
        if kind == "fault":
            model = rng.choice(("chaos/faulty-gpt", "chaos/faulty-claude"))
            directive = _fault(rng, stream, anthropic=model.endswith("claude"))
        elif kind == "left":
            model, stream = rng.choice(PLAIN_MODELS[:2]), True
            directive = {"chunks": LEFT_CHUNKS, "chunk_delay": LEFT_CHUNK_SECONDS}
            leave_after = rng.randint(1, 8)
        elif kind == "left-json":
            # Its own account: the client never learns the request id, so its rows are
            # found by account.
            model, stream, pool = rng.choice(PLAIN_MODELS[:2]), False, "leaver"
            directive = {"delay": 2.0}
            leave_seconds = 0.5
        elif kind == "cold":
            pool = "cold"
        account = self.accounts[pool].pop() if pool == "cold" else rng.choice(self.accounts[pool])
        if directive:
            text = "!mock " + json.dumps(directive)
        rec = self._record(kind, account, route, model, stream, include_usage, text)
        if kind == "left":
            rec.planned, rec.chunk_seconds = LEFT_CHUNKS, LEFT_CHUNK_SECONDS
        await send(
            client, self.base_url, rec, account.key, text, self.t0, leave_after, leave_seconds
        )

    async def _client(self, index: int, until: float) -> None:
        rng = random.Random(f"{self.seed}:{index}")
        limits = httpx.Limits(max_connections=4, max_keepalive_connections=4)
        per_client = self.rate / self.concurrency
        due = time.monotonic()
        async with httpx.AsyncClient(limits=limits) as client:
            while time.monotonic() < until and not self.state.stop:
                await self._one(client, rng)
                # Arrivals at random (Poisson) at the client's share of the rate; a client
                # that fell behind (a slow answer) does not burst to catch up.
                due = max(due + rng.expovariate(per_client), time.monotonic() - 1 / per_client)
                await asyncio.sleep(max(0.0, due - time.monotonic()))

    async def run(self, seconds: float) -> None:
        until = time.monotonic() + seconds
        await asyncio.gather(*(self._client(i, until) for i in range(self.concurrency)))

    async def burst(self, failing: int = 30, recover_seconds: float = 40) -> None:
        """Opens chaos/burst's breaker (failing requests, ten at a time), then asks it
        every half second, as a client would, until it serves again (docs/routing.md:
        closed after its cooldown and two good probes) or `recover_seconds` pass."""
        rng = random.Random(f"{self.seed}:burst")
        account = rng.choice(self.accounts["regular"])
        fail = "!mock " + json.dumps({"status": 500})
        mine: list[Record] = []
        self.bursts.append(mine)
        async with httpx.AsyncClient() as client:

            async def ask(text: str) -> Record:
                rec = self._record("burst", account, "chat", BURST_MODEL, False, False, text)
                mine.append(rec)
                return await send(client, self.base_url, rec, account.key, text, self.t0)

            for start in range(0, failing, 10):
                await asyncio.gather(*(ask(fail) for _ in range(start, min(failing, start + 10))))
            deadline = time.monotonic() + recover_seconds
            served = 0
            while time.monotonic() < deadline and served < 3:
                rec = await ask(f"burst recovery {rng.random()}")
                served = served + 1 if rec.status == 200 else 0
                await asyncio.sleep(0.5)


def _fault(rng: random.Random, stream: bool, anthropic: bool) -> dict[str, object]:
    """An upstream fault the mock knows (mockserver/common.py CHAT_DIRECTIVES). On the
    OpenAI-protocol model most faults hit its first deployment only (`only_model`) and fail
    over; the rest, and every fault on the Anthropic-protocol model (whose mock applies a
    fault to every model), reach the client."""
    if not anthropic and rng.random() < 0.6:
        primary: list[dict[str, object]] = [
            {"status": 500},
            {"status": 503},
            {"status": 429, "retry_after": 1},
        ]
        if not stream:
            primary.append({"malformed": True})
        return {**rng.choice(primary), "only_model": "gpt-4o"}
    # Failures stay near a third of the model's traffic: under the breaker's error rate
    # (docs/routing.md), so that it opens now and then, not for good.
    faults: list[dict[str, object]] = [
        {"status": 500},
        {"status": 503},
        {"delay": 1.5},
        {"delay": 0.5},
        {"reply": "slow " * 20, "delay": 1.0},
    ]
    if stream:
        faults.append({"chunks": 30, "chunk_delay": 0.02, "cut_after": rng.randint(1, 20)})
        faults.append({"chunks": 30, "chunk_delay": 0.02})
        if not anthropic:
            faults.append({"chunks": 20, "first_chunk_delay": 1.0})
    return rng.choice(faults)
