"""A Stripe double for tests and development: localstripe (a stateful fake of Stripe's core
API, run as its own process) behind a front that adds what localstripe lacks, built from
Stripe's API reference: Checkout Sessions, Billing Portal sessions, and the events of
Checkout, refunds and disputes, signed as Stripe signs them and posted to the webhook.

``python -m mockserver.stripe --port 8421 --localstripe http://127.0.0.1:8420``; point
STRIPE_API_BASE at it. Test controls (what a customer or a bank would do) are under
``/_double/``: pay or abandon a Checkout Session, settle a delayed payment, open and close
a dispute (server.py lists them)."""

from mockserver.stripe.server import create_app

__all__ = ["create_app"]
