from __future__ import annotations

from celery import shared_task

from billing.services import credit_holds_release_expired


@shared_task
def release_expired_holds() -> int:
    return credit_holds_release_expired()
