"""The usage stream's consumer (main lane: Redis): entries that are not usage events, or that
the database refuses, are set aside, and the batch they came in is written all the same."""

from __future__ import annotations

import asyncio
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import orjson
import pytest
from django.conf import settings
from django.db import connections

from accounts.services import user_create
from billing.models import CreditAccount, RequestLog
from billing.redis_credit import USAGE_STREAM
from billing.services import credit_grant
from core.asyncdb import db_call
from core.redis_sync import sync_client
from gateway.usage_consumer import MALFORMED, UsageConsumer
from tests.billing.test_usage_writer import _event

# With one key group (the default), the one stream's.
DEAD_LETTERS = USAGE_STREAM + MALFORMED


def _consume(entries: list) -> None:
    async def write() -> None:
        # One worker thread for every database call, so the connection it opens is the one
        # closed below (the test database is dropped at the end of the run).
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        consumer = UsageConsumer(settings.REDIS_URL)
        try:
            await consumer._write(consumer.groups[0], entries)
        finally:
            await consumer.close()
            await db_call(connections.close_all)

    asyncio.run(write())


@pytest.mark.skipif(not settings.REDIS_URL, reason="the usage stream is Redis'")
def test_a_malformed_stream_entry_is_set_aside_and_holds_back_no_one(live_db):
    user = user_create(email=f"poison-{uuid.uuid4().hex[:6]}@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference=f"g-{user.pk}")
    good = _event(user.pk, uuid.uuid4().hex, "0.5")
    entries = [
        (b"1-1", {b"e": b"{}"}),
        (b"1-2", {b"e": b"not json"}),
        (b"1-3", {b"e": orjson.dumps(good)}),
    ]
    sync_client().delete(DEAD_LETTERS)

    _consume(entries)

    assert RequestLog.objects.filter(request_id=good["request_id"]).exists()
    assert CreditAccount.objects.get(user=user).balance == Decimal("0.5")
    dead = sync_client().xrange(DEAD_LETTERS)
    assert [fields[b"id"] for _, fields in dead] == [b"1-1", b"1-2"]


@pytest.mark.skipif(not settings.REDIS_URL, reason="the usage stream is Redis'")
def test_an_entry_the_database_refuses_is_found_and_set_aside(live_db):
    """Postgres text cannot hold NUL: an event with one (as an older gateway wrote the
    model name a client sent) fails its batch's statement; the others are still written."""
    user = user_create(email=f"nul-{uuid.uuid4().hex[:6]}@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference=f"g-{user.pk}")
    events = [_event(user.pk, uuid.uuid4().hex, "0.1") for _ in range(5)]
    events[3]["requested_model"] = "gpt\x00-4"
    entries = [(f"2-{i}".encode(), {b"e": orjson.dumps(e)}) for i, e in enumerate(events)]
    sync_client().delete(DEAD_LETTERS)

    _consume(entries)

    written = set(RequestLog.objects.filter(user=user).values_list("request_id", flat=True))
    assert written == {e["request_id"] for i, e in enumerate(events) if i != 3}
    assert CreditAccount.objects.get(user=user).balance == Decimal("0.6")
    assert [fields[b"id"] for _, fields in sync_client().xrange(DEAD_LETTERS)] == [b"2-3"]
