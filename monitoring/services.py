"""Settlement: the one transaction that ends every admitted request."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.services import api_keys_mark_used
from billing.services import usage_charge, usage_release
from monitoring.models import RequestLog

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
    upstream_latency_ms: float | None = None
    ttft_ms: float | None = None
    attempts: list[dict[str, Any]] = field(default_factory=list)  # see RequestLog.attempts
    held: bool = False  # whether admission reserved credit for it
    # The amount held: what the request may be charged at most (never sent in the event).
    hold: Decimal = Decimal(0)
    # When it arrived, for a request settled after the fact (monitoring.journal); else the
    # log row is dated when it is written (neither is sent in the event).
    created_at: datetime | None = None
    # Its cost is final (set by `charge`): the gateway settles it before the client is told
    # the cost, so that no crash can leave a told cost uncharged (not sent in the event).
    priced: bool = False

    def charge(self, cost: Decimal) -> Decimal:
        """Sets the cost: what the provider reported, priced exactly, even past the hold.
        The hold bounds the usage a provider may honestly report (docs/request-path.md); one
        that reports more bills us for it, so the customer pays it too and the balance may
        go below zero by the difference (then every request is refused with 402 until it is
        topped up). Past CHARGE_CEILING, which no real request comes near, a report is
        charged the ceiling: it keeps Redis' 64-bit pico-credit counters in range."""
        if self.held and cost > self.hold:
            log.warning("%s cost %s over its hold %s", self.request_id, cost, self.hold)
            cost = min(cost, CHARGE_CEILING)
        self.cost, self.priced = cost, True
        return cost

    def as_event(self) -> dict[str, Any]:
        """A JSON-ready dict (cost as an exact decimal string); cheaper than asdict()."""
        event = {name: getattr(self, name) for name in OUTCOME_FIELDS}
        event["cost"] = str(self.cost)
        return event


OUTCOME_FIELDS = tuple(
    f.name for f in fields(RequestOutcome) if f.name not in ("hold", "created_at", "priced")
)


@transaction.atomic
def request_settle(*, outcome: RequestOutcome) -> RequestLog:
    """Charges the actual cost, releases the hold and writes the request log row, once:
    repeating it for the same request id changes nothing, so a failed write is retried."""
    log = RequestLog.objects.filter(request_id=outcome.request_id).first()
    if log is not None:
        return log
    if outcome.cost > 0:
        usage_charge(user_id=outcome.user_id, request_id=outcome.request_id, cost=outcome.cost)
    elif outcome.held:
        usage_release(user_id=outcome.user_id, request_id=outcome.request_id)
    if outcome.api_key_id is not None:
        api_keys_mark_used(key_ids={outcome.api_key_id}, now=timezone.now())
    fields = asdict(outcome)
    fields.pop("held")
    fields.pop("hold")
    fields.pop("priced")
    created_at = fields.pop("created_at") or timezone.now()
    return RequestLog.objects.create(
        user_id=fields.pop("user_id"),
        api_key_id=fields.pop("api_key_id"),
        created_at=created_at,
        **fields,
    )
