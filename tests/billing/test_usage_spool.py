"""The usage spool (billing.usage_spool): records are on disk once appended, a record cut
short by a crash is skipped, a file its writer holds is nobody else's to replay; and a
replayed batch from a Redis that lost its data is mirrored into the new `avail` once."""

from __future__ import annotations

import os
import uuid
from decimal import Decimal
from pathlib import Path

import orjson
import pytest
from django.conf import settings

from accounts.services import user_create
from billing.models import CreditAccount, PendingAvailChange
from billing.redis_credit import (
    avail_key,
    from_pico,
)
from billing.services import credit_avail_seed_from_ledger, credit_grant, credit_pending_apply
from billing.usage_spool import UsageSpool
from billing.usage_writer import usage_batch_apply
from core.redis_sync import sync_client
from tests.billing.test_usage_writer import _event


def test_records_are_read_back_and_one_cut_short_is_skipped(tmp_path: Path):
    spool = UsageSpool(tmp_path, "host")
    spool.append("e1", [b'{"a": 1}', b'{"b": "two words\\n"}'])
    spool.append("e2", [b"{}"])
    (path,) = spool.files()
    with open(path, "ab") as torn:  # a crash in the middle of an append
        torn.write(b'e2 40 {"request_id": ')

    fd = spool.claim(path)
    assert fd is None  # its writer still holds it
    spool.seal()
    fd = spool.claim(path)
    assert fd is not None
    assert spool.read(fd) == [("e1", b'{"a": 1}'), ("e1", b'{"b": "two words\\n"}'), ("e2", b"{}")]
    assert spool.claim(path) is None  # one replayer at a time
    spool.discard(path, fd)
    assert spool.files() == []


def test_a_dead_writers_file_is_anyones(tmp_path: Path):
    path = tmp_path / f"other-{os.getpid()}-0.spool"
    path.write_bytes(b"e 2 {}\n")  # no one holds it: its process is gone
    spool = UsageSpool(tmp_path, "host")

    fd = spool.claim(path)

    assert fd is not None and spool.read(fd) == [("e", b"{}")]
    spool.release(fd)


@pytest.mark.skipif(not settings.REDIS_URL, reason="mirroring is into Redis")
def test_a_replay_from_a_lost_redis_is_charged_into_the_new_avail_once(live_db):
    user = user_create(email=f"spool-{uuid.uuid4().hex[:6]}@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference=f"g-{user.pk}")
    sync_client().delete(avail_key(user.pk))
    credit_avail_seed_from_ledger(user_id=user.pk)  # the new Redis, seeded before the replay
    events = [orjson.dumps(_event(user.pk, uuid.uuid4().hex, cost)) for cost in ("0.25", "0")]

    assert usage_batch_apply(events=events, mirror=True) == 2
    assert usage_batch_apply(events=events, mirror=True) == 0  # replayed twice: once
    assert PendingAvailChange.objects.filter(user=user).count() == 1  # the charged one
    credit_pending_apply()

    assert CreditAccount.objects.get(user=user).balance == Decimal("0.75")
    assert from_pico(sync_client().get(avail_key(user.pk))) == Decimal("0.75")
