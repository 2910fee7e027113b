"""allauth's events as the platform's own (web side only: accounts.apps connects it where
allauth is installed). A web sign-up is announced as `POST /auth/signup`'s is, so it gets
the same trial (billing.trials) and the same abuse checks by address."""

from __future__ import annotations

from typing import Any

from allauth.account.signals import user_signed_up as allauth_signed_up
from django.conf import settings
from django.dispatch import receiver
from django.http import HttpRequest

from accounts.models import User
from accounts.restrictions import client_address
from accounts.signals import user_signed_up


@receiver(allauth_signed_up, dispatch_uid="accounts-web-signup")
def web_signup_announced(sender: Any, request: HttpRequest, user: User, **kwargs: Any) -> None:
    address = client_address(
        request.META.get("REMOTE_ADDR"),
        request.META.get("HTTP_X_FORWARDED_FOR"),
        settings.GATEWAYZ_TRUSTED_PROXIES,
    )
    user_signed_up.send(sender=User, user=user, ip=str(address or ""))
