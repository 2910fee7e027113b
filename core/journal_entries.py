"""The request journal's entries (billing.lost_requests has the rules): what admission and a
stream's deliveries record beside a request's hold, and the outcome they add up to if its
process dies. Written by the gateway, read back by the hold-release job."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson

from core.outcome import RequestOutcome

STATUS = 502  # what the proxy in front tells a client whose worker died
ERROR = "worker_lost"


def journal_admission(outcome: RequestOutcome, now: float) -> bytes:
    """Admission's entry: [user, key, endpoint, model asked, model chosen, stream, arrival]."""
    return orjson.dumps(
        [
            outcome.user_id,
            outcome.api_key_id,
            outcome.endpoint,
            outcome.requested_model,
            outcome.served_model,
            outcome.stream,
            now,
        ]
    )


def journal_delivery(
    outcome: RequestOutcome, provider: str, prompt: int, completion: int, cost: Decimal, now: float
) -> bytes:
    """What had been delivered: [cost, prompt tokens, completion tokens, provider, model
    served, time recorded, ttft ms, upstream latency ms]."""
    return orjson.dumps(
        [
            str(cost),
            prompt,
            completion,
            provider,
            outcome.served_model,
            now,
            outcome.ttft_ms,
            outcome.upstream_latency_ms,
        ]
    )


def lost_outcome(
    request_id: str, admission: bytes | str, delivery: bytes | str | None
) -> RequestOutcome:
    """The outcome of a request whose process died, from its journal."""
    user_id, key_id, endpoint, asked, chosen, stream, arrived = orjson.loads(admission)
    outcome = RequestOutcome(
        request_id=request_id,
        user_id=int(user_id),
        api_key_id=key_id,
        endpoint=endpoint,
        requested_model=asked,
        served_model=chosen,
        status=STATUS,
        error_type=ERROR,
        total_latency_ms=0.0,
        stream=bool(stream),
        held=True,
        created_at=datetime.fromtimestamp(arrived, UTC),
    )
    if delivery:
        cost, prompt, completion, provider, served, recorded, ttft, upstream = orjson.loads(
            delivery
        )
        outcome.cost = Decimal(cost)
        outcome.prompt_tokens, outcome.completion_tokens = int(prompt), int(completion)
        outcome.provider, outcome.served_model = provider, served
        outcome.total_latency_ms = max(0.0, (recorded - arrived) * 1000)
        outcome.ttft_ms, outcome.upstream_latency_ms = ttft, upstream
    return outcome
