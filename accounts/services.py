"""Writes for users and keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.keys import DISPLAY_PREFIX_LENGTH, key_digest, key_generate
from accounts.models import ApiKey, User
from providers.models import ProviderKey


@transaction.atomic
def user_create(*, email: str, password: str | None = None, role: str = User.Role.USER) -> User:
    # Its credit account comes with it (billing.signals), whichever way a user is created.
    return User.objects.create_user(email=email, password=password, role=role)


@transaction.atomic
def user_anonymise(*, user: User) -> None:
    """Deletes what identifies the customer and keeps what the books need: the ledger,
    payments, invoices and request log stay, under an account no one can log into. Every
    key is revoked (refused within a second), their own provider keys are deleted, and
    other apps drop their data on `user_anonymised` (chats)."""
    from allauth.account.models import EmailAddress  # web side only
    from allauth.mfa.models import Authenticator

    from accounts.signals import user_anonymised

    for api_key in ApiKey.objects.filter(user=user, revoked_at__isnull=True):
        api_key_revoke(api_key=api_key)
    ProviderKey.objects.filter(user_id=user.pk).delete()
    EmailAddress.objects.filter(user=user).delete()
    Authenticator.objects.filter(user=user).delete()
    user.email = f"deleted-{user.pk}@deleted.invalid"
    user.first_name = user.last_name = ""
    user.is_active = False
    user.set_unusable_password()
    user.save()
    user_anonymised.send(sender=User, user=user)


@transaction.atomic
def api_key_create(
    *, user: User, name: str, expires_at: datetime | None = None, **restrictions: Any
) -> tuple[ApiKey, str]:
    """Returns the key row and the full key, which exists nowhere else after this call.
    `restrictions`: RESTRICTION_FIELDS, already cleaned (accounts.restrictions)."""
    raw = key_generate()
    api_key = ApiKey.objects.create(
        user=user,
        name=name,
        digest=key_digest(raw),
        prefix=raw[:DISPLAY_PREFIX_LENGTH],
        last4=raw[-4:],
        expires_at=expires_at,
        **restrictions,
    )
    return api_key, raw


@transaction.atomic
def api_key_update(*, api_key: ApiKey, **changes: Any) -> ApiKey:
    """Changes a key's name, expiry or restrictions; every process sees it within a second
    (the key's save announces it)."""
    for field, value in changes.items():
        setattr(api_key, field, value)
    api_key.save(update_fields=[*changes, "updated_at"])
    return api_key


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at", "updated_at"])  # announced by its signal
    return api_key


PLAYGROUND_KEYS_KEPT = timedelta(days=7)


def playground_keys_prune(*, now: datetime | None = None) -> int:
    """Deletes playground keys (one an hour per customer at most) a week past their end:
    their requests stay in the log and the rollups, named by id only."""
    cutoff = (now or timezone.now()) - PLAYGROUND_KEYS_KEPT
    ended = ApiKey.objects.filter(purpose=ApiKey.Purpose.PLAYGROUND, expires_at__lt=cutoff)
    _, deleted = ended.delete()
    return deleted.get(ApiKey._meta.label, 0)


# Enough to show a key is in use, and spares a write per request.
KEY_USE_RESOLUTION = timedelta(minutes=1)


def api_keys_mark_used(*, key_ids: set[int], now: datetime) -> None:
    ApiKey.objects.filter(pk__in=key_ids).exclude(last_used_at__gt=now - KEY_USE_RESOLUTION).update(
        last_used_at=now
    )
