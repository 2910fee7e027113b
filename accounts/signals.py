"""A user saved (deactivated, say) is announced so every process drops its cached keys."""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_save
from django.dispatch import receiver

from accounts.models import User
from gateway.models import CacheInvalidation, invalidation_announce


@receiver(post_save, sender=User)
def user_saved(sender: type[User], instance: User, created: bool, **kwargs: Any) -> None:
    update_fields = kwargs.get("update_fields")
    if created or (update_fields is not None and set(update_fields) <= {"last_login"}):
        return  # nothing cached can be stale
    invalidation_announce(CacheInvalidation.Kind.USER, str(instance.pk))
