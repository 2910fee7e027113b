"""Settlement on the database: the one transaction that ends an admitted request whose
credit is kept there (the embedded default, a request admitted while Redis was away, one
Redis lost since its admission) or whose process died (billing.lost_requests). Requests
settled in Redis reach the database through the usage stream. Both are written by the
one writer of request log rows and usage charges, billing.usage_writer."""

from __future__ import annotations

from django.conf import settings
from django.db import transaction

from billing.models import ZERO, CreditAccount
from billing.services import avail_changes_mirror, avail_changes_record, credit_hold_release
from billing.usage_writer import usage_batch_write
from core.outcome import RequestOutcome


@transaction.atomic
def request_settle(*, outcome: RequestOutcome) -> bool:
    """Releases the request's hold, writes its request log row and charges its cost, once:
    repeating it for the same request id changes nothing (returns False), so a failed
    write is retried. With Redis, the charge is mirrored into the user's `avail`, which
    also releases the hold Redis keeps for the request if Redis admitted it: a request
    that cost nothing mirrors a change of zero for that."""
    if outcome.held:
        credit_hold_release(request_id=outcome.request_id)
    written, charges = usage_batch_write(events=[outcome.dated_event()])
    if not written or not settings.REDIS_URL:
        return bool(written)
    if charges:  # under the account row's lock, taken by the charge
        change = (outcome.user_id, -outcome.cost, outcome.request_id)
    elif outcome.held:
        CreditAccount.objects.select_for_update().filter(user_id=outcome.user_id).first()
        change = (outcome.user_id, ZERO, outcome.request_id)
    else:
        return True
    avail_changes_mirror(avail_changes_record([change]))
    return True
