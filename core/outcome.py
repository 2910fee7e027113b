"""A request's outcome: what settlement charges, the request log records and the usage
stream carries between them (its event), for every admitted request."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

import orjson

log = logging.getLogger(__name__)

# The most one request is ever charged (see RequestOutcome.charge): as much as any hold.
CHARGE_CEILING = Decimal(1_000_000)


@dataclass(slots=True)
class RequestOutcome:
    request_id: str
    user_id: int
    api_key_id: int | None
    endpoint: str
    requested_model: str
    status: int
    total_latency_ms: float
    stream: bool = False
    served_model: str = ""
    provider: str = ""
    error_type: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal = Decimal(0)
    # What the provider bills us for it (billing.pricing): the cost before the markup.
    provider_cost: Decimal = Decimal(0)
    upstream_latency_ms: float | None = None
    ttft_ms: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # see RequestLog.attempts
    # A Responses API answer to keep (`store`): billing.models.StoredResponse's fields.
    stored: dict[str, Any] | None = None
    held: bool = False  # whether admission reserved credit for it
    # The amount held: what the request may be charged at most (never sent in the event).
    hold: Decimal = Decimal(0)
    # When it arrived, for a request settled after the fact (billing.lost_requests); else the
    # log row is dated when it is written (neither is sent in the event).
    created_at: datetime | None = None
    # Its cost is final (set by `charge`): the gateway settles it before the client is told
    # the cost, so that no crash can leave a told cost uncharged (not sent in the event).
    priced: bool = False

    def charge(self, cost: Decimal, provider_cost: Decimal = Decimal(0)) -> Decimal:
        """Sets the cost: what the provider reported, priced exactly, even past the hold.
        The hold bounds the usage a provider may honestly report (docs/request-path.md); one
        that reports more bills us for it, so the customer pays it too and the balance may
        go below zero by the difference (then every request is refused with 402 until it is
        topped up). Past CHARGE_CEILING, which no real request comes near, a report is
        charged the ceiling: it keeps Redis' 64-bit pico-credit counters in range."""
        if self.held and cost > self.hold:
            log.warning("%s cost %s over its hold %s", self.request_id, cost, self.hold)
            cost = min(cost, CHARGE_CEILING)
        self.cost, self.provider_cost, self.priced = cost, provider_cost, True
        return cost

    def as_event(self) -> dict[str, Any]:
        """A JSON-ready dict (cost as an exact decimal string); cheaper than asdict()."""
        event = {name: getattr(self, name) for name in OUTCOME_FIELDS}
        event["cost"] = str(self.cost)
        event["provider_cost"] = str(self.provider_cost)
        return event

    def dated_event(self) -> bytes:
        """The event, dated at the request's arrival when known (a lost request's) or else
        when its row is written: as the database settles it (billing.usage_writer)."""
        event = self.as_event()
        event["created_at"] = self.created_at
        return orjson.dumps(event)


OUTCOME_FIELDS = tuple(
    f.name for f in fields(RequestOutcome) if f.name not in ("hold", "created_at", "priced")
)
