"""The request journal's copy on local disk (billing.journal_file): what one process writes,
and how another settles what a dead one left once Redis has lost it. The whole story, a
gateway killed and Redis restarted empty, is in tests/gateway/test_crash_journal.py."""

from __future__ import annotations

import fcntl
import os
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.conf import settings

from accounts.services import user_create
from billing.journal_file import JournalFile, _unsettled, journal_files_settle
from billing.models import LedgerEntry, PendingAvailChange, RequestLog
from billing.redis_credit import (
    PREFIX,
    hold_key,
)
from billing.services import credit_grant
from core.journal_entries import journal_admission, journal_delivery
from core.redis_sync import sync_client
from tests.support.outcomes import held_outcome

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not settings.REDIS_URL, reason="the embedded lane has no Redis"),
]


def _admit(journal: JournalFile, user_id: int, request_id: str, stream: bool = True) -> None:
    journal.admitted(request_id, journal_admission(held_outcome(user_id, request_id, stream), 1e9))


def _deliver(journal: JournalFile, user_id: int, request_id: str, cost: str) -> None:
    outcome = held_outcome(user_id, request_id)
    entry = journal_delivery(outcome, "mock", 10, 20, Decimal(cost), time.time())
    journal.delivered(request_id, entry)


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.journal"))


def test_a_file_keeps_only_the_requests_in_flight_once_it_rotates(tmp_path: Path):
    journal = JournalFile(tmp_path, "host", stale_seconds=120, rotate_bytes=20_000)
    for i in range(2000):
        _admit(journal, 1, f"r{i}")
        if i % 500 != 7:
            journal.settled(f"r{i}")
    _deliver(journal, 1, "r1507", "0.01")
    [path] = _files(tmp_path)  # the one it writes now: each rotation removed the one before
    assert path.stat().st_size < 20_000 + 1_000
    in_flight = _unsettled(path.read_bytes())
    assert sorted(in_flight) == ["r1007", "r1507", "r507", "r7"]
    assert in_flight["r1507"][1] is not None  # with what it delivered
    # Closed with requests in flight (a shutdown that could not wait): the file stays for
    # the next process; with none, it goes.
    journal.close()
    assert _files(tmp_path) == [path]
    quiet = JournalFile(tmp_path / "quiet", "host", stale_seconds=120)
    _admit(quiet, 1, "q1")
    quiet.settled("q1")
    quiet.close()
    assert not _files(tmp_path / "quiet")


def test_a_directory_that_cannot_be_written_costs_no_request(tmp_path: Path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the directory should be
    journal = JournalFile(blocked / "journal", "host", stale_seconds=120)
    _admit(journal, 1, "r1")  # no exception: Redis' journal alone stands
    _deliver(journal, 1, "r1", "0.01")
    journal.settled("r1")
    assert journal.broken


def test_a_dead_process_file_is_settled_where_redis_lost_it_and_waits_where_it_holds_it(
    tmp_path: Path,
):
    user = user_create(email="journal-file@example.com")
    credit_grant(user=user, amount=Decimal("1"), reference="g")
    redis = sync_client()
    tag = f"{user.pk}-{time.time_ns()}"
    lost, json_lost, held, settled, done = (f"{n}-{tag}" for n in "ljhsd")
    journal = JournalFile(tmp_path, "host", stale_seconds=120)
    for request_id in (lost, held, settled, done):
        _admit(journal, user.pk, request_id)
        _deliver(journal, user.pk, request_id, "0.0125")
    _admit(journal, user.pk, json_lost, stream=False)
    journal.settled(done)  # settled by its process: its mark is written with the next line
    _admit(journal, user.pk, f"x-{tag}")
    journal.settled(f"x-{tag}")
    journal.close()  # its process dies: the file stays, no longer locked
    redis.set(hold_key(held), f"{user.pk} 1")  # Redis still holds it: the job will settle it
    redis.set(f"{PREFIX}settled:{settled}", "1", ex=60)  # Redis settled it already

    assert journal_files_settle(tmp_path) == 2  # `lost` and `json_lost`
    row = RequestLog.objects.get(request_id=lost)
    assert (row.status, row.error_type, row.cost, row.provider) == (
        502,
        "worker_lost",
        Decimal("0.0125"),
        "mock",
    )
    assert RequestLog.objects.get(request_id=json_lost).cost == 0
    assert LedgerEntry.objects.get(reference=lost).amount == Decimal("-0.0125")
    # The new Redis' `avail` never took the charge: it is mirrored into it.
    assert PendingAvailChange.objects.filter(request_id=lost).exists()
    assert not RequestLog.objects.filter(request_id__in=[held, settled, done]).exists()
    [kept] = _files(tmp_path)  # what Redis still holds waits, alone
    assert sorted(_unsettled(kept.read_bytes())) == [held]

    assert journal_files_settle(tmp_path) == 0  # still held
    redis.delete(hold_key(held))  # Redis restarted empty before the job came
    assert journal_files_settle(tmp_path) == 1
    assert RequestLog.objects.get(request_id=held).cost == Decimal("0.0125")
    assert not _files(tmp_path)
    assert journal_files_settle(tmp_path) == 0


def test_a_live_process_file_and_a_waiting_usage_spool_are_left_alone(tmp_path: Path):
    user = user_create(email="journal-file-live@example.com")
    request_id = f"live-{user.pk}-{time.time_ns()}"
    journal = JournalFile(tmp_path, "host", stale_seconds=120)
    _admit(journal, user.pk, request_id)
    assert journal_files_settle(tmp_path) == 0  # its process is alive (holds the lock)
    assert not RequestLog.objects.filter(request_id=request_id).exists()
    journal.close()
    spool = tmp_path / "host-1-0.spool"
    spool.write_bytes(b"")
    fd = os.open(spool, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a consumer still replays it
    try:
        # Its usage may be in that spool: recorded here first, it would be a `worker_lost`.
        assert journal_files_settle(tmp_path) == 0
    finally:
        os.close(fd)
    spool.unlink()
    assert journal_files_settle(tmp_path) == 1
    assert RequestLog.objects.get(request_id=request_id).error_type == "worker_lost"


def test_a_process_with_the_pid_of_a_dead_one_leaves_its_file_to_be_settled(tmp_path: Path):
    # In a container, a restarted process often gets the pid of the one before.
    user = user_create(email="journal-file-pid@example.com")
    request_id = f"dead-{user.pk}-{time.time_ns()}"
    dead = JournalFile(tmp_path, "host", stale_seconds=120)
    _admit(dead, user.pk, request_id)
    dead.close()  # died with it in flight
    successor = JournalFile(tmp_path, "host", stale_seconds=120)  # same name, same pid
    _admit(successor, user.pk, f"alive-{request_id}")
    assert len(_files(tmp_path)) == 2  # a file of its own
    assert journal_files_settle(tmp_path) == 1  # the dead one's, while the successor lives
    assert RequestLog.objects.get(request_id=request_id).error_type == "worker_lost"
    successor.settled(f"alive-{request_id}")
    successor.close()
    assert not _files(tmp_path)
