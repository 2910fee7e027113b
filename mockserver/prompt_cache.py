"""Explicit prompt caching, as Anthropic's Messages API does it (and OpenRouter, which takes
the same ``cache_control`` marks on OpenAI-shape content parts and tools for the models it
caches explicitly), shared by the Anthropic and OpenAI mocks.

The prompt is a sequence of blocks in the API's order (tools, system, messages), each with
its tokens under the mock's counting rule (``common``). A block carrying ``cache_control``
ends a cacheable prefix (a breakpoint). On each request:

* the longest prefix already cached is read: looked up at every breakpoint and at the 20
  block boundaries before it (the API's lookback), so a conversation whose breakpoint moves
  on to the next turn reads what the previous turn wrote;
* the tokens from there to the last breakpoint are written, each stretch at the TTL of the
  breakpoint that ends it (``"5m"`` by default, or ``"1h"``);
* every breakpoint's prefix is then cached (a hit's lifetime is refreshed), for its TTL.

Without a mark nothing is read or written. A prefix is identified by its content with the
marks taken off, and by the model. Unlike the API the mock caches prefixes of any length
(the API's minimum of 1024 tokens or more would only make tests long) and a write is
readable at once.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson

MARK = "cache_control"
LOOKBACK = 20
TTL_SECONDS = {"5m": 300.0, "1h": 3600.0}
MAX_ENTRIES = 100_000


@dataclass(frozen=True)
class CacheUsage:
    read: int = 0
    write_5m: int = 0
    write_1h: int = 0

    @property
    def write(self) -> int:
        return self.write_5m + self.write_1h


class PrefixWalk:
    """Walks the prompt's blocks in order, keeping each boundary's prefix digest and tokens."""

    def __init__(self, model: str) -> None:
        self._hash = hashlib.sha256(model.encode())
        self.tokens = 0
        self.marks = 0
        # per block: (prefix digest, prefix tokens, ttl of its mark or None)
        self.points: list[tuple[bytes, int, str | None]] = []

    def overhead(self, what: Any, tokens: int) -> None:
        """What the prompt holds outside its blocks (a message's role, its tool calls), and
        the tokens it counts for that."""
        self._hash.update(b"\x00" + orjson.dumps(what, option=orjson.OPT_SORT_KEYS))
        self.tokens += tokens

    def block(self, block: Any, tokens: int) -> None:
        mark = block.get(MARK) if isinstance(block, dict) else None
        content = {k: v for k, v in block.items() if k != MARK} if mark is not None else block
        self._hash.update(b"\x01" + orjson.dumps(content, option=orjson.OPT_SORT_KEYS))
        self.tokens += tokens
        ttl = None
        if isinstance(mark, dict):
            self.marks += 1
            ttl = mark.get("ttl") if mark.get("ttl") in TTL_SECONDS else "5m"
        self.points.append((self._hash.copy().digest(), self.tokens, ttl))


class PromptCache:
    def __init__(self) -> None:
        self._entries: dict[bytes, tuple[float, float]] = {}  # digest -> (expiry, ttl seconds)

    def settle(self, walk: PrefixWalk) -> CacheUsage:
        breakpoints = [i for i, (_, _, ttl) in enumerate(walk.points) if ttl is not None]
        if not breakpoints:
            return CacheUsage()
        now = time.monotonic()
        hit = -1
        for b in breakpoints:
            for k in range(b, max(b - LOOKBACK, -1), -1):
                entry = self._entries.get(walk.points[k][0])
                if entry is not None and entry[0] > now:
                    hit = max(hit, k)
                    break
        read = walk.points[hit][1] if hit >= 0 else 0
        write = {"5m": 0, "1h": 0}
        covered = read
        for b in breakpoints:
            digest, tokens, ttl = walk.points[b]
            assert ttl is not None
            if b > hit and tokens > covered:
                write[ttl] += tokens - covered
                covered = tokens
            self._entries[digest] = (now + TTL_SECONDS[ttl], TTL_SECONDS[ttl])
        if hit >= 0:
            digest = walk.points[hit][0]
            _, seconds = self._entries[digest]
            self._entries[digest] = (now + seconds, seconds)
        if len(self._entries) > MAX_ENTRIES:
            self._entries = {d: e for d, e in self._entries.items() if e[0] > now}
        return CacheUsage(read, write["5m"], write["1h"])


# One cache per mock process, as a provider keeps one per account.
prompt_cache = PromptCache()
