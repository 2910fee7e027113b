from __future__ import annotations

from celery import shared_task

from payments.auto_topup import auto_topup_run as _auto_topup_run
from payments.low_balance import low_balance_notify as _low_balance_notify


@shared_task
def auto_topup_run() -> int:
    """Charges the saved cards of customers whose credit is under their threshold."""
    return _auto_topup_run()


@shared_task
def low_balance_notify() -> int:
    """Mails customers whose balance fell under their threshold (once until it recovers)."""
    return _low_balance_notify()
