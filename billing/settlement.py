"""Settlement on the database: the one transaction that ends an admitted request whose
credit is kept there (the embedded default, a request admitted while Redis was away, one
Redis lost since its admission) or whose process died (billing.lost_requests). Requests
settled in Redis reach the database through the usage stream (billing.usage_writer)."""

from __future__ import annotations

import logging
from dataclasses import asdict

from django.db import transaction
from django.utils import timezone

from accounts.services import api_keys_mark_used
from billing.models import RequestLog
from billing.services import usage_charge, usage_release
from core.outcome import RequestOutcome

log = logging.getLogger(__name__)


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
