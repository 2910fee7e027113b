"""One Stripe Customer per user, created the first time they pay, and mirrored by dj-stripe
(djstripe.models.Customer, linked to the user as its subscriber)."""

from __future__ import annotations

from django.db import transaction
from djstripe.models import Customer
from djstripe.settings import djstripe_settings

from accounts.models import User
from payments.stripe_api import stripe_client


def stripe_customer_id(user: User) -> str:
    """The user's Stripe Customer id, creating the Customer if they have none. Stripe's
    idempotency key is the user's id: two first purchases at once make one Customer."""
    existing = Customer.objects.filter(subscriber=user).values_list("id", flat=True).first()
    if existing:
        return str(existing)
    customer = stripe_client().v1.customers.create(
        params={
            "email": user.email,
            "metadata": {djstripe_settings.SUBSCRIBER_CUSTOMER_KEY: str(user.pk)},
        },
        options={"idempotency_key": f"gatewayz-customer-{user.pk}"},
    )
    with transaction.atomic():
        Customer.sync_from_stripe_data(customer.to_dict())
    return str(customer.id)
