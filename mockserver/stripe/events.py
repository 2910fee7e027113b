"""Events as Stripe sends them: the envelope of Stripe's Event object, and the
``Stripe-Signature`` header (``t=<unix time>,v1=<HMAC-SHA256 of "t.payload">``)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from typing import Any

import orjson

API_VERSION = "2025-08-27.basil"


def stripe_id(prefix: str) -> str:
    return f"{prefix}_test_{secrets.token_hex(12)}"


def event_of(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": stripe_id("evt"),
        "object": "event",
        "api_version": API_VERSION,
        "created": int(time.time()),
        "data": {"object": obj},
        "livemode": False,
        "pending_webhooks": 1,
        "request": {"id": None, "idempotency_key": None},
        "type": kind,
    }


def signature_of(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    timestamp = int(time.time()) if timestamp is None else timestamp
    signed = f"{timestamp}.".encode() + payload
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def delivery_of(event: dict[str, Any], secret: str) -> dict[str, str]:
    """The body and signature header of the event's delivery."""
    payload = orjson.dumps(event)
    return {"payload": payload.decode(), "signature": signature_of(payload, secret)}
