"""An address the operator vouches for: below the models, so that the manager making a
superuser can mark it without importing the services (which import the models)."""

from __future__ import annotations

from django.contrib.auth.models import AbstractUser


def user_email_verified(user: AbstractUser) -> None:
    """Marks the user's address verified, as for accounts an operator creates (the admin,
    `createsuperuser`, `create_api_user`): the web login asks no one else to prove it. Web
    sign-ups prove theirs by the link allauth mails."""
    from allauth.account.models import EmailAddress  # web side only (not on inference)

    EmailAddress.objects.update_or_create(
        user=user, email=user.email, defaults={"verified": True, "primary": True}
    )
