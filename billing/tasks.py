from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

from billing.allowance import allowances_expire
from billing.lost_requests import holds_release_expired
from billing.retention import log_retain
from billing.services import credit_pending_apply
from billing.stored_responses import stored_expire
from billing.trials import trials_advance


@shared_task
def release_expired_holds() -> int:
    """Settles the requests whose process died before settling them, from their journal
    (billing.lost_requests), and gives back the credit of holds that kept none."""
    lost, released = holds_release_expired(now=time.time())
    return lost + released


@shared_task
def mirror_pending_balance_changes() -> int:
    """Mirrors into Redis the balance changes made while it was unreachable."""
    return credit_pending_apply() if settings.REDIS_URL else 0


@shared_task
def expire_stored_responses() -> int:
    """Deletes the stored Responses API answers past GATEWAYZ_RESPONSES_RETENTION_DAYS."""
    return stored_expire()


@shared_task
def expire_allowances() -> int:
    """Takes out of the balance what is left of allowances whose period has ended."""
    return allowances_expire()


@shared_task
def advance_trials() -> int:
    """Grants capped trials their next day's credit and ends trials whose time is up."""
    return trials_advance()


@shared_task
def retain_request_log() -> dict[str, int]:
    """Months of the request log made ahead, and those past retention dropped."""
    pruned = log_retain()
    return {
        "partitions_created": pruned.partitions_created,
        "partitions_dropped": pruned.partitions_dropped,
        "rows_deleted": pruned.rows_deleted,
        "settled_ids_deleted": pruned.settled_ids_deleted,
    }
