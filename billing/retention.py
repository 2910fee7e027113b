"""How long the request log is kept, and how it is kept from growing without end.

On Postgres the log (`monitoring_requestlog`) is partitioned by month on `created_at`
(declarative partitioning): a month past GATEWAYZ_REQUEST_LOG_RETENTION_DAYS is dropped
whole, which costs nothing like deleting its rows would (no dead tuples, no vacuum, no
bloated indexes), and partitions are created MONTHS_AHEAD in advance. A DEFAULT partition
takes any row no month holds (a lost request dated long ago; a clock far ahead), so a write
never fails for want of a partition; a month created later takes its rows out of it first.
Elsewhere (SQLite, `make run`) old rows are deleted by age.

Postgres keeps unique indexes per partition only, and the month is not part of a request's
id, so the log alone cannot say whether a request was already written: settlement's
idempotency is `SettledRequest` (one narrow row per request, kept as long as the log).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from billing.models import RequestLog, SettledRequest

log = logging.getLogger(__name__)

TABLE = RequestLog._meta.db_table
DEFAULT_PARTITION = f"{TABLE}_default"
MONTHS_AHEAD = 2
DELETE_BATCH = 5000


def _month(day: date, months: int = 0) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(month: date) -> str:
    return f"{TABLE}_p{month:%Y_%m}"


def _bounds(month: date) -> tuple[datetime, datetime]:
    start = datetime(month.year, month.month, 1, tzinfo=UTC)
    nxt = _month(month, 1)
    return start, datetime(nxt.year, nxt.month, 1, tzinfo=UTC)


def log_partitioned() -> bool:
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT 1 FROM pg_partitioned_table WHERE partrelid = to_regclass(%s)", [TABLE]
        )
        return cursor.fetchone() is not None


def _partitions(cursor: Any) -> dict[str, str]:
    """Partition name -> its bound expression."""
    cursor.execute(
        "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i "
        "JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = to_regclass(%s)",
        [TABLE],
    )
    return dict(cursor.fetchall())


def _month_create(cursor: Any, month: date) -> None:
    """The month's partition, with the rows the default partition holds for it moved in."""
    start, end = _bounds(month)
    name = partition_name(month)
    cursor.execute(
        f"SELECT EXISTS (SELECT 1 FROM {DEFAULT_PARTITION} "
        "WHERE created_at >= %s AND created_at < %s)",
        [start, end],
    )
    if not cursor.fetchone()[0]:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {name} PARTITION OF {TABLE} FOR VALUES FROM (%s) TO (%s)",
            [start, end],
        )
        return
    cursor.execute(f"CREATE TABLE {name} (LIKE {TABLE} INCLUDING DEFAULTS INCLUDING CONSTRAINTS)")
    cursor.execute(
        f"WITH moved AS (DELETE FROM {DEFAULT_PARTITION} "
        "WHERE created_at >= %s AND created_at < %s RETURNING *) "
        f"INSERT INTO {name} SELECT * FROM moved",
        [start, end],
    )
    cursor.execute(
        f"ALTER TABLE {TABLE} ATTACH PARTITION {name} FOR VALUES FROM (%s) TO (%s)", [start, end]
    )


def log_partition() -> None:
    """Turns the request log into a partitioned table (once; nothing if it already is, or
    off Postgres), keeping every row, index, foreign key and id. Run by billing's migration
    and, for a test database made straight from the models, by the test set-up."""
    if connection.vendor == "postgresql" and not log_partitioned():
        _log_rebuild(partitioned=True)


def log_unpartition() -> None:
    """Back to one plain table (billing's migration, reversed)."""
    if log_partitioned():
        _log_rebuild(partitioned=False)


def _log_rebuild(*, partitioned: bool) -> None:
    """The log's table made again, partitioned by month or not, with its rows, ids,
    non-unique indexes and foreign keys. A partitioned table's primary key must hold the
    partition key: (id, created_at); a plain table's is id."""
    old = f"{TABLE}_rebuilt"
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # as in log_retain
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef NOT LIKE %s",
            [TABLE, "CREATE UNIQUE INDEX%"],
        )
        index_defs = [row[0] for row in cursor.fetchall()]
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = to_regclass(%s) AND contype = 'f'",
            [TABLE],
        )
        foreign_keys = cursor.fetchall()
        cursor.execute(f"ALTER TABLE {TABLE} RENAME TO {old}")
        layout = " PARTITION BY RANGE (created_at)" if partitioned else ""
        cursor.execute(
            f"CREATE TABLE {TABLE} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS "
            f"INCLUDING IDENTITY){layout}"
        )
        if partitioned:
            cursor.execute(f"CREATE TABLE {DEFAULT_PARTITION} PARTITION OF {TABLE} DEFAULT")
            cursor.execute(f"SELECT min(created_at) FROM {old}")
            oldest = cursor.fetchone()[0] or timezone.now()
            month, last = _month(oldest.date()), _month(timezone.now().date(), MONTHS_AHEAD)
            while month <= last:
                _month_create(cursor, month)
                month = _month(month, 1)
        cursor.execute(f"INSERT INTO {TABLE} SELECT * FROM {old}")
        cursor.execute(
            f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {TABLE}), false)",
            [TABLE],
        )
        cursor.execute(f"DROP TABLE {old}")  # its partitions with it
        key = "id, created_at" if partitioned else "id"
        cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {TABLE}_pkey PRIMARY KEY ({key})")
        for index_def in index_defs:  # on a partitioned parent, each partition gets one
            cursor.execute(index_def.replace(" ON ONLY ", " ON "))
        for name, definition in foreign_keys:
            cursor.execute(f"ALTER TABLE {TABLE} ADD CONSTRAINT {name} {definition}")


@dataclass(frozen=True, slots=True)
class Pruned:
    partitions_created: int = 0
    partitions_dropped: int = 0
    rows_deleted: int = 0
    settled_ids_deleted: int = 0


def log_retain(*, now: datetime | None = None) -> Pruned:
    """Celery beat, daily: months ahead created, months past retention dropped (or, off
    Postgres, rows past it deleted), and the settled ids as old as what was dropped."""
    now = now or timezone.now()
    cutoff = now - timedelta(days=settings.GATEWAYZ_REQUEST_LOG_RETENTION_DAYS)
    created = dropped = deleted = 0
    if log_partitioned():
        with transaction.atomic(), connection.cursor() as cursor:
            # Deferred foreign-key checks of rows written earlier in this transaction would
            # keep a partition from being dropped: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            existing = _partitions(cursor)
            month = _month(now.date())
            for ahead in range(MONTHS_AHEAD + 1):
                wanted = _month(month, ahead)
                if partition_name(wanted) not in existing:
                    _month_create(cursor, wanted)
                    created += 1
            for name in sorted(existing):
                if name == DEFAULT_PARTITION or not name.startswith(f"{TABLE}_p"):
                    continue
                year, mon = name.removeprefix(f"{TABLE}_p").split("_")
                if _bounds(date(int(year), int(mon), 1))[1] <= cutoff:
                    cursor.execute(f"ALTER TABLE {TABLE} DETACH PARTITION {name}")
                    cursor.execute(f"DROP TABLE {name}")
                    dropped += 1
            cursor.execute(f"DELETE FROM {DEFAULT_PARTITION} WHERE created_at < %s", [cutoff])
            deleted = cursor.rowcount
        # Kept back to the oldest row still logged: a month is dropped only once all of
        # it is past the cutoff, so its ids must stay until then.
        oldest = RequestLog.objects.order_by("created_at").values_list("created_at", flat=True)
        cutoff = min(cutoff, oldest.first() or cutoff)
    else:
        while True:
            batch = list(
                RequestLog.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[
                    :DELETE_BATCH
                ]
            )
            if not batch:
                break
            deleted += RequestLog.objects.filter(pk__in=batch).delete()[0]
    settled, _ = SettledRequest.objects.filter(settled_at__lt=cutoff).delete()
    pruned = Pruned(created, dropped, deleted, settled)
    log.info("request log retention: %s", pruned)
    return pruned
