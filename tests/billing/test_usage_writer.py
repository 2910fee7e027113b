"""The usage writer: a batch from the usage stream lands once, however often it is replayed.
It needs only the database, so it runs on SQLite too."""

from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest

from accounts.services import user_create
from billing.models import CreditAccount, LedgerEntry, RequestLog
from billing.services import credit_grant
from billing.usage_writer import usage_batch_apply
from tests.support.usage import usage_event

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]


def _event(user_id: int, request_id: str, cost: str) -> dict:
    return usage_event(user_id, request_id, cost)


def test_it_writes_a_replayed_batch_once():
    user = user_create(email="writer@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    rid = uuid.uuid4().hex
    batch = [
        orjson.dumps(_event(user.pk, rid, "0.25")),
        orjson.dumps(_event(user.pk, rid + "b", "0")),
        orjson.dumps(_event(user.pk, rid, "0.25")),
    ]

    assert usage_batch_apply(events=batch) == 2
    assert usage_batch_apply(events=batch) == 0

    assert CreditAccount.objects.get(user=user).balance == Decimal("0.75")
    entry = LedgerEntry.objects.get(reference=rid)
    assert (entry.amount, entry.balance_after) == (Decimal("-0.25"), Decimal("0.75"))
    assert RequestLog.objects.filter(user=user).count() == 2
