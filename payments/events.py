"""Stripe's events, each stored once (StripeEvent, keyed by Stripe's id) and processed by
its type's handler in a transaction, under the event row's lock: the same event delivered
twice at once is processed once; one that fails keeps its error and rolls back whatever
its handler wrote, to be retried (Stripe retries it; staff can from the admin).

A handler raises EventDeferred when the event is about an object not known yet (a refund
whose purchase's event has not arrived): the event waits, and runs again when that object
arrives (`events_resume`). EventIgnored: the event is not ours to act on."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from django.db import transaction
from django.utils import timezone

from payments.models import StripeEvent

log = logging.getLogger(__name__)

Handler = Callable[[dict[str, Any]], None]
HANDLERS: dict[str, Handler] = {}
# The customer the event being processed concerns, as its handler finds out (event_concerns).
_concerns: ContextVar[int | None] = ContextVar("stripe_event_user", default=None)


def event_concerns(user_id: int) -> None:
    """Called by a handler once it knows whose payment or subscription the event is about."""
    _concerns.set(user_id)


class EventDeferred(Exception):
    def __init__(self, waiting_for: str) -> None:
        super().__init__(f"waiting for {waiting_for}")
        self.waiting_for = waiting_for


class EventIgnored(Exception):
    pass


def handles(*types: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for kind in types:
            HANDLERS[kind] = handler
        return handler

    return register


def event_receive(data: dict[str, Any]) -> StripeEvent:
    """Stores a verified event (once) and processes it unless that was done before."""
    StripeEvent.objects.get_or_create(
        id=data["id"],
        defaults={
            "type": data["type"],
            "livemode": bool(data.get("livemode")),
            "created": datetime.fromtimestamp(int(data.get("created", 0)), tz=UTC),
            "payload": data,
        },
    )
    return event_process(data["id"])


DONE = (StripeEvent.Status.PROCESSED, StripeEvent.Status.IGNORED)


def event_process(event_id: str) -> StripeEvent:
    with transaction.atomic():
        event = StripeEvent.objects.select_for_update().get(pk=event_id)
        if event.status in DONE:
            return event  # a second delivery
        event.attempts += 1
        event.waiting_for = ""
        handler = HANDLERS.get(event.type)
        concerns = _concerns.set(None)
        try:
            if handler is None:
                raise EventIgnored(f"no handler for {event.type}")
            with transaction.atomic():  # a savepoint: a failure undoes the handler's writes
                handler(event.object)
        except EventDeferred as deferred:
            event.status, event.waiting_for = StripeEvent.Status.DEFERRED, deferred.waiting_for
            event.note = str(deferred)
        except EventIgnored as ignored:
            event.status, event.note = StripeEvent.Status.IGNORED, str(ignored)
        except Exception as exc:
            log.exception("Stripe event %s (%s) failed", event.id, event.type)
            event.status, event.note = StripeEvent.Status.FAILED, f"{type(exc).__name__}: {exc}"
        else:
            event.status, event.note = StripeEvent.Status.PROCESSED, ""
            event.processed_at = timezone.now()
        event.user_id = _concerns.get() or event.user_id
        _concerns.reset(concerns)
        event.save()
    return event


def events_resume(waiting_for: str) -> None:
    """Runs again the events that waited for `waiting_for` (call once it is committed)."""
    waiting = StripeEvent.objects.filter(
        status=StripeEvent.Status.DEFERRED, waiting_for=waiting_for
    ).order_by("created", "received_at")
    for event_id in waiting.values_list("id", flat=True):
        event_process(event_id)
