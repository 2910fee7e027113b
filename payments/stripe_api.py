"""Every call to Stripe goes through `stripe_client()`: one key (STRIPE_SECRET_KEY), one
address (STRIPE_API_BASE, so a local double can stand in for Stripe), retries on network
errors with Stripe's idempotency keys. Without a key, payments are not configured: callers
get `PaymentsNotConfigured`, which the API answers with a clear 503."""

from __future__ import annotations

import stripe
from django.conf import settings

NOT_CONFIGURED = (
    "Payments are not configured on this Gatewayz (no STRIPE_SECRET_KEY): credit can be "
    "granted by staff only."
)


class PaymentsNotConfigured(Exception):
    def __init__(self, message: str = NOT_CONFIGURED) -> None:
        super().__init__(message)


def payments_configured() -> bool:
    return bool(settings.STRIPE_SECRET_KEY)


def stripe_client() -> stripe.StripeClient:
    if not payments_configured():
        raise PaymentsNotConfigured
    return stripe.StripeClient(
        settings.STRIPE_SECRET_KEY,
        base_addresses={"api": settings.STRIPE_API_BASE},
        # Each create carries an idempotency key, so a retry never pays twice.
        max_network_retries=2,
    )
