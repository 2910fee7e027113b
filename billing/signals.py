"""What billing does when the accounts below it change: every new user gets a credit account
(whichever way the user was made: the API, the admin, `createsuperuser`, a sign-up), in the
transaction that creates the user; a customer who signed up themselves, a free trial."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from billing.services import credit_account_ensure


def credit_account_for_new_user(
    sender: Any, instance: User, created: bool, raw: bool = False, **kwargs: Any
) -> None:
    if created and not raw:  # not for rows loaded from a fixture, which bring their own
        credit_account_ensure(user=instance)


def trial_for_new_customer(sender: Any, user: Any, ip: str, **kwargs: Any) -> None:
    """A customer who signed up themselves gets a free trial, if trials are on and they
    may have one (billing.trials)."""
    from billing.trials import trial_start

    trial_start(user=user, ip=ip)
