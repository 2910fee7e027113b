"""dj-stripe's mirror of Stripe's subscriptions and invoices (djstripe.models), for staff and
reports: written after the event's transaction commits, from the event's object (dj-stripe
reads what it lacks, a price or product, from Stripe). Our own rows (Subscription, Payment,
the ledger) decide everything about money; a mirror that fails is logged, never retried
into the event."""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import stripe
from django.conf import settings
from django.db import transaction
from djstripe import models as djstripe_models

log = logging.getLogger(__name__)

MIRRORS: dict[str, tuple[Any, Any]] = {
    "subscription": (stripe.Subscription, djstripe_models.Subscription),
    "invoice": (stripe.Invoice, djstripe_models.Invoice),
}


def mirror_later(kind: str, data: dict[str, Any]) -> None:
    transaction.on_commit(partial(_mirror, kind, data))


def _mirror(kind: str, data: dict[str, Any]) -> None:
    resource, model = MIRRORS[kind]
    try:
        with transaction.atomic():
            model.sync_from_stripe_data(resource.construct_from(data, settings.STRIPE_SECRET_KEY))
    except Exception:
        log.exception("dj-stripe could not mirror %s %s", kind, data.get("id"))
