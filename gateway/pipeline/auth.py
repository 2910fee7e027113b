"""Who is calling: the Gatewayz key from the Authorization header, via the key cache."""

from __future__ import annotations

import logging
import time

from django.conf import settings

from accounts.keys import key_digest, key_looks_valid
from accounts.restrictions import KeyRestricted, KeyRestrictions, client_address
from core.errors import GatewayError
from core.outage import DATABASE_UNREACHABLE, database_unavailable
from gateway.http import Scope, header
from gateway.keycache import KeyIdentity, key_cache

log = logging.getLogger(__name__)


def _unauthorized(message: str) -> GatewayError:
    return GatewayError(401, message, code="invalid_api_key")


class KeyRefused(GatewayError):
    """A known key refused (expired; the client's address, referrer or scope not allowed):
    the refusal is the key owner's to see in their request log."""

    def __init__(self, error: GatewayError, identity: KeyIdentity) -> None:
        super().__init__(
            error.status, error.message, type=error.type, code=error.code, param=error.param
        )
        self.identity = identity


_unknown_keys = 0  # refused since the last log line about them
_unknown_logged_at = 0.0
UNKNOWN_KEY_LOG_SECONDS = 10.0


def _unknown_key_seen() -> None:
    """One log line per UNKNOWN_KEY_LOG_SECONDS at most, however many keys are guessed."""
    global _unknown_keys, _unknown_logged_at
    _unknown_keys += 1
    now = time.monotonic()
    if now - _unknown_logged_at >= UNKNOWN_KEY_LOG_SECONDS:
        log.warning("%d request(s) refused for an unknown or revoked key", _unknown_keys)
        _unknown_keys, _unknown_logged_at = 0, now


def _token(scope: Scope) -> str:
    """The key from `Authorization: Bearer` (OpenAI's SDKs) or `x-api-key` (Anthropic's)."""
    raw = header(scope, b"authorization")
    if not raw:
        api_key = header(scope, b"x-api-key")
        if api_key and api_key.strip():
            return api_key.decode("latin-1").strip()
        raise _unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer gw_live_...' "
            "or 'x-api-key: gw_live_...'."
        )
    scheme, _, token = raw.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Send the API key as 'Authorization: Bearer gw_live_...'.")
    return token


KEY_UNCHECKED = "this API key"


async def authenticate(scope: Scope) -> KeyIdentity:
    """The caller's identity; raises a GatewayError (a KeyRefused for a known key)."""
    token = _token(scope)
    if not key_looks_valid(token):
        _unknown_key_seen()
        raise _unauthorized("Incorrect API key provided.")
    try:
        identity = await key_cache.lookup(key_digest(token))
    except DATABASE_UNREACHABLE:
        # A key cached nowhere (not here, not in the shared key cache): retry shortly.
        raise database_unavailable(KEY_UNCHECKED) from None
    if identity is None:
        _unknown_key_seen()
        raise _unauthorized("Incorrect API key provided, or the key was revoked.")
    try:
        if identity.expired(time.time()):
            raise _unauthorized("This API key has expired.")
        if identity.suspended:
            raise GatewayError(
                403,
                f"This account is suspended ({identity.suspended}); contact support.",
                type="permission_error",
                code="account_suspended",
            )
        if identity.restrictions is not None:
            _check_client(identity.restrictions, scope)
    except GatewayError as refused:
        raise KeyRefused(refused, identity) from None
    return identity


def key_forbids(error: KeyRestricted) -> GatewayError:
    return GatewayError(403, error.message, type="permission_error", code=error.code)


def key_allows_model(identity: KeyIdentity, name: str, model_id: str) -> None:
    """Raises a 403 if the key's model patterns match neither the name asked for nor the
    model's canonical id."""
    if identity.restrictions is not None:
        try:
            identity.restrictions.check_model(name, model_id)
        except KeyRestricted as refused:
            raise key_forbids(refused) from None


def _check_client(restrictions: KeyRestrictions, scope: Scope) -> None:
    """The key's scope, address and referrer rules (its model rule is checked on routing)."""
    peer = scope.get("client")
    forwarded = header(scope, b"x-forwarded-for")
    address = client_address(
        peer[0] if peer else None,
        forwarded.decode("latin-1") if forwarded else None,
        settings.GATEWAYZ_TRUSTED_PROXIES,
    )
    referrer = header(scope, b"referer") or header(scope, b"origin")
    try:
        restrictions.require_scope("inference")
        restrictions.check_address(address)
        restrictions.check_referrer(referrer.decode("latin-1") if referrer else None)
    except KeyRestricted as error:
        raise key_forbids(error) from None
