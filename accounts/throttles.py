"""Per-address throttles for the routes anyone may call (logging in, refreshing a token):
guessing passwords costs an attacker time. The address is the one the key restrictions use
(X-Forwarded-For believed only from trusted proxies: DRF's own default would take it from
anyone, and let a client pick a fresh identity per request). While the shared cache (Redis)
is unreachable they count in the process, as the gateway's limits do, rather than fail the
login or let every guess through."""

from __future__ import annotations

from django.conf import settings
from django.core.cache import caches
from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle
from rest_framework.views import APIView

from accounts.restrictions import client_address
from core.redis_sync import UNREACHABLE


class AddressThrottle(SimpleRateThrottle):
    rate_setting = ""

    def get_rate(self) -> str:
        return str(getattr(settings, self.rate_setting))

    def allow_request(self, request: Request, view: APIView) -> bool:
        try:
            return super().allow_request(request, view)
        except UNREACHABLE:
            self.cache = caches["local"]
            return super().allow_request(request, view)

    def get_ident(self, request: Request) -> str:
        meta = request.META
        address = client_address(
            meta.get("REMOTE_ADDR"),
            meta.get("HTTP_X_FORWARDED_FOR"),
            settings.GATEWAYZ_TRUSTED_PROXIES,
        )
        return str(address or "unknown")

    def get_cache_key(self, request: Request, view: APIView) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class LoginThrottle(AddressThrottle):
    scope, rate_setting = "login", "GATEWAYZ_LOGIN_RATE"


class TokenRefreshThrottle(AddressThrottle):
    scope, rate_setting = "token_refresh", "GATEWAYZ_TOKEN_REFRESH_RATE"


class SignupThrottle(AddressThrottle):
    scope, rate_setting = "signup", "GATEWAYZ_SIGNUP_RATE"
