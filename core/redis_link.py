"""Whether this process can reach Redis, as its last use of Redis found it.

Redis carries the credit holds and the rate-limit counters. When it cannot be reached, the
gateway keeps serving on the database and in-process limits (gateway.guards.credit) instead of
refusing every request. This object is the one place that knows: it is told of a failure
by whoever met it, says so once in the log, is shown by readiness and metrics, and is
told when a probe finds Redis again (gateway.guards.credit, after the balance changes made
meanwhile have been mirrored into Redis).

Plain attributes, no lock: a flag written by one thread and read by others is safe in
CPython, and a reader that sees the old value for a moment does no harm.
"""

from __future__ import annotations

import logging
import time

from django.conf import settings
from prometheus_client import Counter, Gauge

log = logging.getLogger(__name__)

REDIS_UP = Gauge(
    "gatewayz_redis_up",
    "1 while this process reaches Redis; 0 while it serves on the database and in-process limits",
)
REDIS_OUTAGES = Counter("gatewayz_redis_outages", "Times this process lost Redis")
# The processes serving on the fallback now (livesum: those alive); 0 on the embedded
# default, which has no Redis to fall back from.
REDIS_FALLBACK = Gauge(
    "gatewayz_redis_fallback_active",
    "Processes serving on database credit holds and in-process limits because Redis is away",
    multiprocess_mode="livesum",
)


class RedisLink:
    def __init__(self) -> None:
        self.down_since: float | None = None  # unix time
        self.reason = ""
        REDIS_UP.set(1 if settings.REDIS_URL else 0)

    @property
    def up(self) -> bool:
        return self.down_since is None

    def lost(self, exc: BaseException) -> None:
        if self.down_since is not None:
            return
        self.down_since = time.time()
        self.reason = f"{type(exc).__name__}: {exc}"[:200]
        REDIS_UP.set(0)
        REDIS_FALLBACK.set(1)
        REDIS_OUTAGES.inc()
        log.error(
            "Redis is unreachable (%s): serving with database credit holds and in-process "
            "rate limits until it is back",
            self.reason,
        )

    def restored(self) -> None:
        if self.down_since is None:
            return
        log.warning(
            "Redis is reachable again after %.1f s: credit and rate limits are back in Redis",
            time.time() - self.down_since,
        )
        self.down_since = None
        self.reason = ""
        REDIS_UP.set(1)
        REDIS_FALLBACK.set(0)

    def describe(self) -> dict[str, object]:
        """For readiness: how this process is counting limits and credit right now."""
        if self.down_since is None:
            return {"status": "ok"}
        return {
            "status": "down",
            "error": self.reason.partition(":")[0],  # its kind: the text names hosts
            "down_for_seconds": round(time.time() - self.down_since, 1),
            "serving_with": "database credit holds and in-process rate limits",
        }


redis_link = RedisLink()
