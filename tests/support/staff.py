"""Staff's view of a gateway in tests: a developer's key, and the circuit breakers as the
monitoring API shows them."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


def staff_key(make_account: Callable[..., Any]) -> str:
    staff = make_account()
    staff.user.role = "developer"  # may see and reset breakers (accounts.roles)
    staff.user.save()
    return str(staff.key)


def breakers_shown(gateway: str, key: str) -> dict[str, dict[str, Any]]:
    response = httpx.get(f"{gateway}/api/monitoring/circuit-breakers",
                         headers={"authorization": f"Bearer {key}"})  # fmt: skip
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
