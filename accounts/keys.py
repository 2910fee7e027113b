"""Gatewayz API key material: generation and the peppered digest we store instead."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from django.conf import settings

KEY_PREFIX = "gw_live_"
# 32 random bytes: 256 bits, beyond any guessing, as url-safe base64 (43 characters).
KEY_ENTROPY_BYTES = 32
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 4


def key_generate() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(KEY_ENTROPY_BYTES)


def key_digest(raw_key: str) -> str:
    """HMAC-SHA256 under the pepper: a stolen table of digests cannot be brute-forced."""
    return hmac.new(settings.GATEWAYZ_KEY_PEPPER, raw_key.encode(), hashlib.sha256).hexdigest()


def key_looks_valid(raw_key: str) -> bool:
    return raw_key.startswith(KEY_PREFIX) and 40 <= len(raw_key) <= 100
