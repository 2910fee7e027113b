"""The request log's retention (billing.retention): on Postgres, partitioned by month, months
made ahead and dropped whole past GATEWAYZ_REQUEST_LOG_RETENTION_DAYS, the default partition
catching what no month holds; elsewhere rows deleted by age. Settlement stays idempotent
without the log's unique index; rollups are kept two years."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
import pytest
from django.db import connection
from django.utils import timezone

from billing.models import RequestLog, SettledRequest
from billing.retention import (
    DEFAULT_PARTITION,
    _month,
    log_partition,
    log_partitioned,
    log_retain,
    log_unpartition,
    partition_name,
)
from billing.usage_writer import usage_batch_apply
from monitoring.models import UsageRollup
from monitoring.rollups import rollups_prune
from tests.support.request_logs import request_logged
from tests.support.usage import usage_event

pytestmark = [pytest.mark.django_db, pytest.mark.smoke]

postgres_only = pytest.mark.skipif(
    "connection.vendor != 'postgresql'", reason="partitions are Postgres's"
)


def _partition_of(request_id: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tableoid::regclass::text FROM monitoring_requestlog WHERE request_id = %s",
            [request_id],
        )
        return cursor.fetchone()[0]


@postgres_only
def test_the_log_is_partitioned_by_month_with_months_ahead():
    assert log_partitioned()
    now = timezone.now()
    row = request_logged(model="m", provider="p", at=now)
    assert _partition_of(row.request_id) == partition_name(_month(now.date()))
    future = request_logged(model="m", provider="p", at=now + timedelta(days=62))
    assert _partition_of(future.request_id) == partition_name(_month(now.date(), 2))
    ancient = request_logged(model="m", provider="p", at=now - timedelta(days=3 * 365))
    assert _partition_of(ancient.request_id) == DEFAULT_PARTITION  # no month holds it


@postgres_only
def test_a_month_made_later_takes_its_rows_from_the_default_partition():
    now = timezone.now()
    early = request_logged(model="m", provider="p", at=now + timedelta(days=130))
    assert _partition_of(early.request_id) == DEFAULT_PARTITION
    pruned = log_retain(now=now + timedelta(days=100))  # that month is now within reach
    assert pruned.partitions_created >= 1
    assert _partition_of(early.request_id) == partition_name(
        _month((now + timedelta(days=130)).date())
    )
    assert RequestLog.objects.filter(request_id=early.request_id).count() == 1


@postgres_only
def test_months_past_retention_are_dropped_whole(settings):
    settings.GATEWAYZ_REQUEST_LOG_RETENTION_DAYS = 90
    now = timezone.now()
    old = request_logged(model="m", provider="p", at=now - timedelta(days=1))
    SettledRequest.objects.create(request_id=old.request_id, settled_at=now - timedelta(days=1))
    kept = request_logged(model="m", provider="p", at=now + timedelta(days=40))
    later = now + timedelta(days=130)  # the month `old` is in ended more than 90 days before
    pruned = log_retain(now=later)
    assert pruned.partitions_dropped >= 1
    assert not RequestLog.objects.filter(request_id=old.request_id).exists()
    assert RequestLog.objects.filter(request_id=kept.request_id).exists()
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [partition_name(_month(now.date()))])
        assert cursor.fetchone()[0] is None
    assert not SettledRequest.objects.filter(request_id=old.request_id).exists()


def test_rows_past_retention_deleted_by_age_without_partitions(settings):
    settings.GATEWAYZ_REQUEST_LOG_RETENTION_DAYS = 30
    now = timezone.now()
    if log_partitioned():  # the default partition holds what no month does: deleted by age
        stale = request_logged(model="m", provider="p", at=now - timedelta(days=3 * 365))
    else:
        stale = request_logged(model="m", provider="p", at=now - timedelta(days=31))
    fresh = request_logged(model="m", provider="p", at=now - timedelta(days=29))
    pruned = log_retain(now=now)
    assert pruned.rows_deleted >= 1
    assert not RequestLog.objects.filter(pk=stale.pk).exists()
    assert RequestLog.objects.filter(pk=fresh.pk).exists()


def test_settlement_stays_idempotent_without_a_unique_index(django_user_model):
    user = django_user_model.objects.create(email=f"{uuid.uuid4().hex[:8]}@example.com")
    event = orjson.dumps(usage_event(user.pk, uuid.uuid4().hex, "0.25"))
    assert usage_batch_apply(events=[event, event]) == 1  # a replay within the batch
    assert usage_batch_apply(events=[event]) == 0  # and a later one
    request_id = orjson.loads(event)["request_id"]
    assert RequestLog.objects.filter(request_id=request_id).count() == 1
    assert SettledRequest.objects.filter(request_id=request_id).count() == 1


def test_rollups_are_kept_two_years():
    now = timezone.now()
    old = UsageRollup.objects.create(granularity="day", bucket=now - timedelta(days=740))
    recent = UsageRollup.objects.create(granularity="day", bucket=now - timedelta(days=700))
    assert rollups_prune(now=now) == 1
    assert not UsageRollup.objects.filter(pk=old.pk).exists()
    assert UsageRollup.objects.filter(pk=recent.pk).exists()


@postgres_only
def test_the_table_converts_both_ways_keeping_rows_and_ids():
    now = timezone.now()
    rows = [
        request_logged(model="m", provider="p", at=now - timedelta(days=d)) for d in (0, 40, 400)
    ]
    log_unpartition()  # billing's migration, reversed
    assert not log_partitioned()
    log_partition()
    assert log_partitioned()
    kept = dict(
        RequestLog.objects.filter(pk__in=[r.pk for r in rows]).values_list("pk", "request_id")
    )
    assert kept == {r.pk: r.request_id for r in rows}
    after = request_logged(model="m", provider="p", at=now)
    assert after.pk > max(r.pk for r in rows)  # the ids go on from where they were
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'monitoring_requestlog'")
        names = {row[0] for row in cursor.fetchall()}
    assert "requestlog_failures_idx" in names and "monitoring__user_id_f320f8_idx" in names
