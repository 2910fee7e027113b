"""Settlement happens after the response: tests wait for its row, boundedly."""

from __future__ import annotations

import time

from billing.models import RequestLog


def settled(request_id: str, timeout: float = 10.0) -> RequestLog:
    deadline = time.monotonic() + timeout
    while True:
        log = RequestLog.objects.filter(request_id=request_id).first()
        if log is not None:
            return log
        if time.monotonic() > deadline:
            raise AssertionError(f"request {request_id} was not settled in {timeout}s")
        time.sleep(0.02)


def settled_count(user_id: int, count: int, timeout: float = 15.0) -> list[RequestLog]:
    deadline = time.monotonic() + timeout
    while True:
        logs = list(RequestLog.objects.filter(user_id=user_id))
        if len(logs) >= count:
            return logs
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(logs)} of {count} requests settled in {timeout}s")
        time.sleep(0.02)
