"""A user or a key saved (deactivated, revoked, given other limits) is announced so every
process drops what it cached of them."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save, pre_save
from django.dispatch import Signal, receiver

from accounts.models import ApiKey, Plan, User
from accounts.roles import role_apply, staff_flag
from core.models import CacheInvalidation, invalidation_announce, invalidations_announce

# A customer signed up themselves (`POST /auth/signup`, the web signup): sent with `user`
# and `ip` (the client's address). Users made by operators are not announced (no trial).
user_signed_up = Signal()

# A customer deleted their account (accounts.services.user_anonymise): sent with `user`
# once their personal data is gone from accounts; other apps drop theirs (chats).
user_anonymised = Signal()


@receiver(pre_save, sender=User)
def user_role_staff_flag(sender: type[User], instance: User, **kwargs: Any) -> None:
    """A user's role decides whether they are staff (accounts.roles)."""
    instance.is_staff = staff_flag(instance)


@receiver(post_save, sender=User)
def user_saved(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if not kwargs.get("raw") and (update_fields is None or "role" in update_fields):
        role_apply(instance)
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # nothing cached can be stale
    invalidation_announce(CacheInvalidation.Kind.USER, str(instance.pk))


@receiver(post_save, sender=ApiKey)
def api_key_saved(sender: type[ApiKey], instance: ApiKey, created: bool, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and set(update_fields) <= {"last_used_at"}):
        return
    invalidation_announce(CacheInvalidation.Kind.API_KEY, instance.digest)


@receiver(post_save, sender=Plan)
def plan_saved(sender: type[Plan], instance: Plan, created: bool, **kwargs: Any) -> None:
    """Its accounts' limits and priority changed: each of them is reloaded everywhere."""
    if created:
        return
    invalidations_announce(
        CacheInvalidation.Kind.USER,
        [str(user_id) for user_id in instance.users.values_list("pk", flat=True)],
    )
