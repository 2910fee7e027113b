from __future__ import annotations

import time

from celery import shared_task
from django.conf import settings

from billing.redis_credit import credit_holds_release_expired_redis
from billing.services import credit_holds_release_expired, credit_pending_apply


@shared_task
def release_expired_holds() -> int:
    """Gives back the credit held for requests whose process died before settling them."""
    released = credit_holds_release_expired()
    if settings.REDIS_URL:
        released += credit_holds_release_expired_redis(now=time.time())
    return released


@shared_task
def mirror_pending_balance_changes() -> int:
    """Mirrors into Redis the balance changes made while it was unreachable."""
    return credit_pending_apply() if settings.REDIS_URL else 0
