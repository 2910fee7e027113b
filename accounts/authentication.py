"""DRF authentication by Gatewayz key (the management API; the hot path has its own)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.permissions import BasePermission
from rest_framework.request import Request

from accounts.keys import key_digest, key_looks_valid
from accounts.models import ApiKey, User
from accounts.restrictions import KeyRestricted, client_address, restrictions_of


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[User, ApiKey] | None:
        parts = authentication.get_authorization_header(request).split()
        if len(parts) != 2 or parts[0].lower() != b"bearer":
            return None
        token = parts[1].decode("latin-1")
        if not token.startswith("gw_"):
            return None  # someone else's bearer token (a JWT): let the next class try
        if not key_looks_valid(token):
            raise exceptions.AuthenticationFailed("Incorrect API key provided.")
        api_key = ApiKey.objects.select_related("user").filter(digest=key_digest(token)).first()
        if api_key is None or not api_key.is_active(timezone.now()) or not api_key.user.is_active:
            raise exceptions.AuthenticationFailed("Incorrect, revoked or expired API key.")
        _check_client(api_key, request)
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def _check_client(api_key: ApiKey, request: Request) -> None:
    """The key's address and referrer rules hold here too (scopes: KeyScope, per view)."""
    restrictions = restrictions_of(
        api_key.allowed_ips, api_key.allowed_referrers, api_key.allowed_models, api_key.scopes
    )
    if restrictions is None:
        return
    meta = request.META
    address = client_address(
        meta.get("REMOTE_ADDR"), meta.get("HTTP_X_FORWARDED_FOR"), settings.GATEWAYZ_TRUSTED_PROXIES
    )
    try:
        restrictions.check_address(address)
        restrictions.check_referrer(meta.get("HTTP_REFERER") or meta.get("HTTP_ORIGIN"))
    except KeyRestricted as error:
        raise exceptions.PermissionDenied(error.message) from None


def request_user(request: Request | HttpRequest) -> User:
    """The authenticated customer of a DRF view (IsAuthenticated has already run) or of a
    page (login_required has)."""
    user = request.user
    assert isinstance(user, User)
    return user


class KeyScope(BasePermission):
    """A request made with a Gatewayz key needs the view's `required_scope` on that key
    (JWT and session logins are the account holder and may do everything)."""

    message = "This API key does not have the scope this endpoint needs."

    def has_permission(self, request: Request, view: Any) -> bool:
        required = getattr(view, "required_scope", None)
        return not (
            isinstance(request.auth, ApiKey) and required and required not in request.auth.scopes
        )
