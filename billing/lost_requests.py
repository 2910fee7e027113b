"""The request journal: what is known of a request whose process died before settling it.

Every admitted request leaves a journal entry with its credit hold, written by admission
itself (in `ADMIT`'s one Redis round trip, or in the database hold row without Redis):
user, key, endpoint, model asked and model chosen, stream or not, arrival time. While a
stream is relayed, what has been delivered is recorded beside it at most once every
GATEWAYZ_JOURNAL_SECONDS (gateway.relay.journal): provider, tokens, their price. Settlement
deletes both with the hold.

A hold that expires (GATEWAYZ_HOLD_TTL_SECONDS; a delivery record pushes the expiry on)
belongs to a request whose process died. The hold-release job (`holds_release_expired`,
under Celery beat) then settles it from its journal, once per request id, like the
process would have: a request log row with status 502 and error `worker_lost`, and a
charge for what was recorded as delivered (docs/request-path.md, "A crash leaves a
record"). Holds without a journal (left by an older release) are only released.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from django.conf import settings

from billing.models import CreditHold
from billing.redis_credit import credit_holds_release_expired_redis, to_pico
from billing.redis_journal import journals_due, requests_lost_settle_redis
from billing.services import credit_holds_release_expired
from billing.settlement import request_settle
from core.journal_entries import lost_outcome

log = logging.getLogger(__name__)


def _lost_in_redis(now: float) -> int:
    lost = []
    for prefix, request_id, journal in journals_due(now=now):
        if b"a" not in journal:
            continue
        try:
            outcome = lost_outcome(request_id, journal[b"a"], journal.get(b"d"))
        except (ValueError, TypeError, ArithmeticError):
            log.exception("the journal of %s cannot be read; its hold is only released", request_id)
            continue
        lost.append((prefix, request_id, to_pico(outcome.cost), outcome.dated_event()))
    return requests_lost_settle_redis(now=now, lost=lost) if lost else 0


def _lost_in_database(now: float) -> int:
    settled = 0
    due = (
        CreditHold.objects.filter(expires_at__lte=datetime.fromtimestamp(now, UTC))
        .exclude(journal="")
        .values_list("request_id", "journal", "delivered")[:1000]
    )
    for request_id, admission, delivery in due:
        try:
            outcome = lost_outcome(request_id, admission, delivery or None)
        except (ValueError, TypeError, ArithmeticError):
            log.exception("the journal of %s cannot be read; its hold is only released", request_id)
            continue
        # Charges what was delivered, releases the hold, writes the row: once, and not at
        # all if its process settled it meanwhile (alive after all).
        settled += request_settle(outcome=outcome)
    return settled


def holds_release_expired(*, now: float) -> tuple[int, int]:
    """Settles the requests whose hold is due from their journal, then releases the holds
    left (no journal); returns (settled as lost, released)."""
    lost = _lost_in_database(now)
    released = credit_holds_release_expired(now=datetime.fromtimestamp(now, UTC))
    if settings.REDIS_URL:
        lost += _lost_in_redis(now)
        released += credit_holds_release_expired_redis(now=now)
    if lost:
        log.warning("settled %d requests whose process died, from their journal", lost)
    return lost, released
