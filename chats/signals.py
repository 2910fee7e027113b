"""A customer who deleted their account leaves no conversations behind."""

from __future__ import annotations

from typing import Any

from accounts.models import User
from chats.models import ChatSession


def chats_of_anonymised(sender: type[User], user: User, **kwargs: Any) -> None:
    ChatSession.objects.filter(user=user).delete()
