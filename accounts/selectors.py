from __future__ import annotations

from django.db.models import QuerySet
from django.http import Http404

from accounts.models import ApiKey, User


def api_keys_of(*, user: User) -> QuerySet[ApiKey]:
    return ApiKey.objects.filter(user=user)


def api_key_get_for_user(*, user: User, key_id: int) -> ApiKey:
    """A key the user owns; another user's key is indistinguishable from a missing one."""
    api_key = api_keys_of(user=user).filter(pk=key_id).first()
    if api_key is None:
        raise Http404("No such API key.")
    return api_key
