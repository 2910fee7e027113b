"""Usage charged as the gateway charges it: one event through the usage writer (which takes
a plan's or a trial's allowance first)."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from billing.usage_writer import usage_batch_apply


def usage_event(user_id: int, request_id: str, cost: str) -> dict[str, Any]:
    """A usage event as the gateway queues it for `usage_batch_apply`."""
    return {
        "request_id": request_id,
        "user_id": user_id,
        "api_key_id": None,
        "endpoint": "chat.completions",
        "requested_model": "m",
        "served_model": "m",
        "provider": "p",
        "status": 200,
        "error_type": "",
        "prompt_tokens": 1,
        "completion_tokens": 1,
        "cached_tokens": 0,
        "cost": cost,
        "upstream_latency_ms": 1.0,
        "ttft_ms": None,
        "total_latency_ms": 1.0,
        "stream": False,
        "held": True,
    }


def usage_charge(user_id: int, cost: str) -> None:
    usage_batch_apply(events=[orjson.dumps(usage_event(user_id, uuid.uuid4().hex, cost))])
