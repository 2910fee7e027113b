"""The circuit breakers as staff see and reset them (the monitoring API, the admin), in sync
code: the shared state in Redis, or this process's own when there is no Redis (the embedded
default serves everything in one)."""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings

from core.redis_sync import sync_client
from gateway.guards.breaker_board import HASH, board, board_forget, breaker_load
from gateway.guards.breaker_rules import CLOSED, HALF_OPEN, Breaker

log = logging.getLogger(__name__)


def breaker_view(key: str, b: Breaker, now: float) -> dict[str, Any]:
    """A breaker as the monitoring API shows it."""
    provider, model = key.split("|", 1)
    return {
        "provider": provider,
        "model": model,
        "state": b.state,
        "consecutive_failures": b.consecutive,
        "window_requests": b.requests,
        "window_failures": b.failures,
        "opened_at": b.opened_at or None,
        "retry_at": b.retry_at() if b.state != CLOSED else None,
        "probing": b.state == HALF_OPEN and now < b.probe_until,
        "last_error": b.last_error,
    }


def breakers_list() -> dict[str, Breaker]:
    if not settings.REDIS_URL:
        return dict(board().breakers)
    raw: dict[bytes, bytes] = sync_client().hgetall(HASH)  # type: ignore[assignment]
    return {k.decode(): breaker_load(v) for k, v in raw.items()}


def breakers_reset(provider: str) -> list[str]:
    """Closes every breaker of `provider`; every process sees it within a second."""
    mine = [k for k in breakers_list() if k.split("|", 1)[0] == provider]
    if settings.REDIS_URL and mine:
        sync_client().hdel(HASH, *mine)
    board_forget(mine)  # this process serves requests too: it knows at once
    log.warning("circuit breakers of %s reset: %s", provider, ", ".join(mine) or "none open")
    return mine
