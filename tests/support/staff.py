"""Staff's view of a gateway in tests: a developer's key, and the circuit breakers as the
monitoring API shows them; and a breaker put where the staff side of this process reads
breakers (the admin, the monitoring API through Django's test client)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import httpx
import orjson
from django.conf import settings

from core.redis_sync import sync_client
from gateway.guards.breaker_board import HASH, board
from gateway.guards.breaker_rules import Breaker


def staff_key(make_account: Callable[..., Any]) -> str:
    staff = make_account()
    staff.user.role = "developer"  # may see and reset breakers (accounts.roles)
    staff.user.save()
    return str(staff.key)


def breakers_shown(gateway: str, key: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(
        f"{gateway}/api/monitoring/circuit-breakers", headers={"authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    return {f"{b['provider']}|{b['model']}": b for b in response.json()["data"]}


def failures_of(gateway: str, key: str, breaker: str) -> int:
    shown = breakers_shown(gateway, key).get(breaker)
    return int(shown["consecutive_failures"]) if shown else 0


def failures_reach(gateway: str, key: str, breaker: str, count: int) -> int:
    """The breaker's consecutive failures once they reach `count` (a stream's failure is
    recorded just after the client has its end), or as they stand after 3 s."""
    deadline = time.monotonic() + 3
    while (seen := failures_of(gateway, key, breaker)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return seen


def breaker_put(key: str, breaker: Breaker | None) -> None:
    """Sets (None: removes) a breaker in Redis, or without it (the embedded default) in this
    process's own board, where breakers_list() reads it."""
    if settings.REDIS_URL:
        if breaker is None:
            sync_client().hdel(HASH, key)
        else:
            sync_client().hset(HASH, key, orjson.dumps(asdict(breaker)))
    elif breaker is None:
        board().breakers.pop(key, None)
    else:
        board().breakers[key] = breaker
