"""What every relay is handed: the answer to relay, the request it answers, where to send it
and what it is metered in (gateway.pipeline.serve builds one per answered request)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.outcome import RequestOutcome
from gateway.http import Send
from gateway.relay.upstream_attempt import UpstreamAnswer

Headers = list[tuple[bytes, bytes]]


@dataclass(slots=True)
class RelayContext:
    send: Send  # the client's, watched (gateway.relay.delivery)
    body: dict[str, Any]  # the client's request, validated
    body_bytes: int  # its size: what a prompt is estimated from when a provider says nothing
    answer: UpstreamAnswer
    outcome: RequestOutcome  # what the relay meters
    headers: Headers  # the answer's own: request id, provider, model, rate limits
    started: float  # perf_counter at arrival, for the time to first token
