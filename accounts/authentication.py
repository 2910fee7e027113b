"""DRF authentication by Gatewayz key (the management API; the hot path has its own)."""

from __future__ import annotations

from django.utils import timezone
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from accounts.keys import key_digest, key_looks_valid
from accounts.models import ApiKey, User


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
        return api_key.user, api_key

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


def request_user(request: Request) -> User:
    """The authenticated customer of a DRF view (IsAuthenticated has already run)."""
    user = request.user
    assert isinstance(user, User)
    return user
