"""What the Cluster wire costs the gateway's process: CPU µs per money script through
ClusterWire (core.redis_cluster: slot lookup, routing, one connection per master) against
RedisWire (one server), in alternating rounds, the same scripts at the same concurrency.

    python -m bench.cluster_wire [--rounds 5] [--calls 20000]

A Redis Cluster of three masters (and a replica each) and a plain redis-server are started
on loopback. No WAIT (GATEWAYZ_REDIS_WAIT_REPLICAS=0) on either side: the routing alone
is measured. The hot path makes two script calls per request.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings_test")
os.environ["GATEWAYZ_REDIS_WAIT_REPLICAS"] = "0"

import django

django.setup()

import redis  # noqa: E402

from core.redis_cluster import ClusterWire  # noqa: E402
from core.redis_wire import RedisWire, Wire  # noqa: E402
from tests.support.redis_cluster import ClusterSet, cluster_port  # noqa: E402
from tests.support.redis_ha import _until  # noqa: E402

# Shaped like ADMIT: a few keys of one group, a few writes.
SCRIPT = """
redis.call('INCRBY', KEYS[1], ARGV[1])
redis.call('SET', KEYS[2], ARGV[1])
return redis.call('ZADD', KEYS[3], ARGV[2], ARGV[3])
"""
CONCURRENCY = 64


async def _round(wire: Wire, calls: int, groups: int) -> float:
    """CPU µs per call, `calls` scripts at CONCURRENCY at a time over `groups` groups."""

    async def one(n: int) -> None:
        tag = f"{{g{n % groups}}}:"
        keys = [f"b:{tag}avail:{n % 97}", f"b:{tag}hold:{n}", f"b:{tag}holds"]
        await wire.evalsha(SCRIPT, keys, [1, n, n])

    await one(0)  # connected, the map learnt, the script loaded
    started = time.process_time()
    for at in range(0, calls, CONCURRENCY):
        await asyncio.gather(*(one(n) for n in range(at, min(at + CONCURRENCY, calls))))
    return (time.process_time() - started) / calls * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=20_000)
    options = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="gatewayz-bench-cluster-"))
    cluster = ClusterSet(root)
    port = cluster_port()
    single = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        cluster.up()
        _until(lambda: redis.Redis(port=port).ping(), "the single server")
        seeds = [("127.0.0.1", int(s.split(":")[1])) for s in cluster.seeds.split(",")]
        figures: dict[str, list[float]] = {"one server": [], "cluster": []}

        async def rounds() -> None:
            one = RedisWire(f"redis://127.0.0.1:{port}/0", timeout=5)
            many = ClusterWire("redis://127.0.0.1/0", seeds, timeout=5)
            for _ in range(options.rounds):
                figures["one server"].append(await _round(one, options.calls, 24))
                figures["cluster"].append(await _round(many, options.calls, 24))
            await one.close()
            await many.close()

        asyncio.run(rounds())
        ratios = [c / o for c, o in zip(figures["cluster"], figures["one server"], strict=True)]
        print(f"CPU µs per script call, median of {options.rounds} rounds:")
        for name, values in figures.items():
            spread = f"{min(values):.1f}–{max(values):.1f}"
            print(f"  {name:>10}: {statistics.median(values):6.1f}  ({spread})")
        print(f"  cluster ÷ one server: {statistics.median(ratios):.2f}×")
    finally:
        single.terminate()
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
