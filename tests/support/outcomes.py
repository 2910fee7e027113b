"""An admitted request's outcome as the journal tests build it: a chat request of
test/echo, held for 0.4 credits."""

from __future__ import annotations

from decimal import Decimal

from core.outcome import RequestOutcome


def held_outcome(user_id: int, request_id: str, stream: bool = True) -> RequestOutcome:
    return RequestOutcome(
        request_id=request_id,
        user_id=user_id,
        api_key_id=None,
        endpoint="chat.completions",
        requested_model="test/echo",
        served_model="test/echo",
        status=200,
        total_latency_ms=0.0,
        stream=stream,
        hold=Decimal("0.4"),
        held=True,
    )
