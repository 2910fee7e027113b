"""Stream measurements wrk cannot make: time to first byte, and many streams held open.

    python -m bench.streams ttfb URL --auth KEY --model M --rate 200 --requests 400
    python -m bench.streams hold URL --auth KEY --model M --streams 1000
Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

import aiohttp


def _body(model: str) -> bytes:
    return json.dumps(
        {
            "model": model,
            "stream": True,
            "max_tokens": 64,
            "messages": [{"role": "user", "content": "Say hello in twenty words."}],
        }
    ).encode()


async def _one(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str], body: bytes
) -> tuple[float, bool]:
    started = time.perf_counter()
    async with session.post(url, data=body, headers=headers) as response:
        head = await response.content.readany()
        first = time.perf_counter() - started
        rest = await response.read()
        # A fast upstream may send the whole stream in the first read.
        ok = response.status == 200 and b"[DONE]" in head + rest
    return first, ok


async def ttfb(
    url: str, headers: dict[str, str], model: str, rate: float, requests: int
) -> dict[str, float]:
    """Open loop: streams start at a fixed rate whatever the server does, so the figure is
    the server's time to first byte at that load, not the queueing of a saturated loop."""
    body = _body(model)
    firsts: list[float] = []
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def one() -> None:
            nonlocal errors
            first, ok = await _one(session, url, headers, body)
            firsts.append(first)
            errors += not ok

        tasks = []
        start = time.perf_counter()
        for i in range(requests):
            await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    firsts.sort()
    return {
        "ttfb_p50_us": statistics.median(firsts) * 1e6,
        "ttfb_p99_us": firsts[int(len(firsts) * 0.99) - 1] * 1e6,
        "errors": errors,
    }


async def hold(url: str, headers: dict[str, str], model: str, streams: int) -> dict[str, float]:
    body = _body(model)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0), timeout=timeout
    ) as session:
        results = await asyncio.gather(
            *(_one(session, url, headers, body) for _ in range(streams)), return_exceptions=True
        )
    ok = sum(1 for r in results if isinstance(r, tuple) and r[1])
    return {"streams": streams, "ok": ok, "errors": streams - ok}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["ttfb", "hold"])
    parser.add_argument("url")
    parser.add_argument("--auth", default="")
    parser.add_argument("--model", default="bench/model")
    parser.add_argument("--rate", type=float, default=200, help="streams started per second")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--streams", type=int, default=1000)
    args = parser.parse_args()
    headers = {"content-type": "application/json"}
    if args.auth:
        headers["authorization"] = f"Bearer {args.auth}"
    if args.mode == "ttfb":
        result = asyncio.run(ttfb(args.url, headers, args.model, args.rate, args.requests))
    else:
        result = asyncio.run(hold(args.url, headers, args.model, args.streams))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
