"""After the load: wait, as an operator would, until the system has written what it owes —
the usage stream empty (each entry is deleted once its batch commits; a killed worker's
unacknowledged entries are claimed by another after a minute), every hold given back
(a dead process's holds expire after GATEWAYZ_HOLD_TTL_SECONDS and beat's task releases
them), every balance change made while Redis was away mirrored into it. Then the checks
read a system at rest."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import psycopg
import redis

# The soak runs with one key group (core.redis_groups): the plain names.
USAGE_STREAM = "gwz:credit:usage"  # billing.redis_credit.USAGE_STREAM
HOLDS = "gwz:credit:holds"  # billing.redis_credit.HOLDS


@dataclass
class DrainResult:
    seconds: float
    stream_left: int
    redis_holds: int
    db_holds: int
    pending_changes: int

    @property
    def settled(self) -> bool:
        return not (self.stream_left or self.redis_holds or self.db_holds or self.pending_changes)


def _state(r: redis.Redis, db_url: str) -> tuple[int, int, int, int]:
    stream = int(r.xlen(USAGE_STREAM))
    holds = int(r.zcard(HOLDS))
    with psycopg.connect(db_url, connect_timeout=5) as conn:
        db_holds = conn.execute("SELECT count(*) FROM billing_credithold").fetchone()
        pending = conn.execute("SELECT count(*) FROM billing_pendingavailchange").fetchone()
    return stream, holds, int(db_holds[0] if db_holds else 0), int(pending[0] if pending else 0)


def drain(
    r: redis.Redis, db_url: str, timeout: float, say: Callable[[str], None] = print
) -> DrainResult:
    started = time.monotonic()
    last = (-1, -1, -1, -1)
    state = last
    while time.monotonic() - started < timeout:
        try:
            state = _state(r, db_url)
        except (redis.RedisError, psycopg.Error) as exc:
            say(f"  drain: {type(exc).__name__}: {exc}")
            time.sleep(1)
            continue
        if state != last:
            say(
                f"  drain {time.monotonic() - started:5.1f} s: usage stream {state[0]}, "
                f"holds redis {state[1]} db {state[2]}, pending balance changes {state[3]}"
            )
            last = state
        if state == (0, 0, 0, 0):
            break
        time.sleep(1)
    return DrainResult(time.monotonic() - started, *state)
