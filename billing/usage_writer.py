"""Writes settled requests from the usage stream to Postgres, one transaction per batch and
a handful of statements however large the batch: request log rows, usage ledger rows and
account balances. Idempotent on request id: a batch replayed after a crash changes nothing.

Plain SQL rather than the ORM: at a few thousand requests a second the ORM's per-row cost
was the largest item in the gateway's profile (bench/).
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
from django.conf import settings
from django.db import DataError, connection, transaction
from django.utils import timezone

from accounts.models import ApiKey
from accounts.services import KEY_USE_RESOLUTION, api_keys_mark_used
from billing.models import CreditAccount, LedgerEntry, RequestLog, SettledRequest, StoredResponse
from billing.services import avail_changes_record

# On Postgres a whole batch travels as one JSON parameter that the server unpacks
# (jsonb_to_recordset): statements of constant text, so psycopg never re-parses a long
# query, and the events are never parsed in Python. Elsewhere (SQLite), multi-row VALUES
# in chunks.
CHUNK = 32
# The request log columns the writer fills, with their Postgres types.
PG_LOG_TYPES = {
    "request_id": "text",
    "user_id": "bigint",
    "api_key_id": "bigint",
    "endpoint": "text",
    "requested_model": "text",
    "served_model": "text",
    "provider": "text",
    "status": "int",
    "error_type": "text",
    "prompt_tokens": "int",
    "completion_tokens": "int",
    "cached_tokens": "int",
    "cache_write_tokens": "int",
    "cost": "numeric",
    "provider_cost": "numeric",
    "upstream_latency_ms": "float8",
    "ttft_ms": "float8",
    "total_latency_ms": "float8",
    "stream": "bool",
    "attempts": "jsonb",
}
LOG_COLUMNS = tuple(PG_LOG_TYPES)
# Columns added after events were first written: an event queued by an older process (a
# rolling deploy) lacks them and gets the default.
LOG_DEFAULTS: dict[str, Any] = {"cache_write_tokens": 0, "attempts": "[]", "provider_cost": 0}
_PG_LOG_SELECT = ",".join(
    f"COALESCE({c}, {LOG_DEFAULTS[c]!r})" if c in LOG_DEFAULTS else c for c in LOG_COLUMNS
)
# An event may say when its request arrived (one settled after the fact from its journal:
# billing.lost_requests); else the row is dated when it is written.
PG_EVENT_TYPES = {**PG_LOG_TYPES, "created_at": "timestamptz"}
PG_LEDGER_TYPES = {
    "user_id": "bigint",
    "amount": "numeric",
    "balance_after": "numeric",
    "reference": "text",
}


def _pg_recordset(types: dict[str, str], param: str = "") -> str:
    placeholder = f"%({param})s" if param else "%s"
    return (
        f"jsonb_to_recordset({placeholder}::jsonb) AS x("
        + ", ".join(f"{c} {t}" for c, t in types.items())
        + ")"
    )


def _chunks(items: list[Any], size: int = CHUNK) -> list[list[Any]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


def _insert_request_logs_pg(cursor: Any, events: list[bytes], now: Any) -> list[tuple[Any, ...]]:
    """Inserts the rows not written yet, and marks their keys used, in one statement whose
    text never changes; returns (request_id, user_id, cost) of each row written. A request
    is new when its id goes into SettledRequest (the log's own indexes are per month:
    billing.retention); a replay within the batch counts once.

    The events go to Postgres as the stream holds them, one JSON array, never parsed in
    Python: the server checks them (an entry that is not a usage event fails the statement,
    and the consumer sets it aside)."""
    cursor.execute(
        f"WITH batch AS (SELECT * FROM {_pg_recordset(PG_EVENT_TYPES, 'events')}), "
        f"settled AS (INSERT INTO {SettledRequest._meta.db_table} (request_id, settled_at) "
        "SELECT request_id, %(now)s FROM batch "
        "ON CONFLICT (request_id) DO NOTHING RETURNING request_id), "
        f"fresh AS (INSERT INTO {RequestLog._meta.db_table} ({','.join(LOG_COLUMNS)}, created_at) "
        f"SELECT DISTINCT ON (request_id) {_PG_LOG_SELECT}, COALESCE(created_at, %(now)s) "
        "FROM batch JOIN settled USING (request_id) "
        "RETURNING request_id, user_id, api_key_id, cost"
        f"), used AS (UPDATE {ApiKey._meta.db_table} SET last_used_at = %(now)s "
        "WHERE id IN (SELECT api_key_id FROM fresh) "
        "AND (last_used_at IS NULL OR last_used_at <= %(stale)s)) "
        "SELECT request_id, user_id, cost FROM fresh",
        {
            "now": now,
            "stale": now - KEY_USE_RESOLUTION,
            "events": _json_array(events),
        },
    )
    return cursor.fetchall()


def _json_array(events: list[bytes]) -> str:
    try:
        return (b"[" + b",".join(events) + b"]").decode()
    except UnicodeDecodeError as exc:  # refused like any other entry that is not an event
        raise DataError(f"a usage event is not UTF-8: {exc}") from exc


def _insert_request_logs(cursor: Any, events: list[dict[str, Any]], now: Any) -> set[str]:
    """Elsewhere (SQLite): inserts the rows not written yet; returns their request ids."""
    fresh: set[str] = set()
    for chunk in _chunks(events):
        cursor.execute(
            f"INSERT INTO {SettledRequest._meta.db_table} (request_id, settled_at) "
            f"VALUES {','.join(['(%s, %s)'] * len(chunk))} "
            "ON CONFLICT (request_id) DO NOTHING RETURNING request_id",
            [value for event in chunk for value in (event["request_id"], now)],
        )
        fresh.update(r[0] for r in cursor.fetchall())
    columns = (*LOG_COLUMNS, "created_at")
    row = "(" + ",".join(["%s"] * len(columns)) + ")"
    for chunk in _chunks([e for e in events if e["request_id"] in fresh]):
        params: list[Any] = []
        for event in chunk:
            params.extend([event.get(c, LOG_DEFAULTS.get(c)) for c in LOG_COLUMNS[:-1]])
            params.append(orjson.dumps(event.get("attempts", [])).decode())  # the last column
            arrived = event.get("created_at")
            params.append(datetime.fromisoformat(arrived) if arrived else now)
        cursor.execute(
            f"INSERT INTO {RequestLog._meta.db_table} ({','.join(columns)}) "
            f"VALUES {','.join([row] * len(chunk))}",
            params,
        )
    return fresh


def _store_responses_pg(cursor: Any, events: list[bytes], now: Any) -> None:
    """Keeps the Responses API answers the events carry (`stored`), once per response id."""
    if not any(b'"stored":{' in event for event in events):
        return
    cursor.execute(
        f"INSERT INTO {StoredResponse._meta.db_table} (id, user_id, api_key_id, "
        "previous_response_id, input_items, output_items, response, created_at, expires_at) "
        "SELECT stored->>'id', user_id, api_key_id, "
        "COALESCE(stored->>'previous_response_id', ''), stored->'input', stored->'output', "
        "stored->'response', %(now)s, %(expires)s "
        "FROM jsonb_to_recordset(%(events)s::jsonb) "
        "AS x(user_id bigint, api_key_id bigint, stored jsonb) "
        "WHERE jsonb_typeof(stored) = 'object' ON CONFLICT (id) DO NOTHING",
        {"now": now, "expires": now + _retention(), "events": _json_array(events)},
    )


def _store_responses(events: list[dict[str, Any]], now: Any) -> None:
    """Elsewhere (SQLite): the same, through the ORM."""
    rows = [
        StoredResponse(
            id=e["stored"]["id"],
            user_id=e["user_id"],
            api_key_id=e.get("api_key_id"),
            previous_response_id=e["stored"].get("previous_response_id") or "",
            input_items=e["stored"].get("input") or [],
            output_items=e["stored"].get("output") or [],
            response=e["stored"].get("response") or {},
            created_at=now,
            expires_at=now + _retention(),
        )
        for e in events
        if isinstance(e.get("stored"), dict)
    ]
    if rows:
        StoredResponse.objects.bulk_create(rows, ignore_conflicts=True)


def _retention() -> timedelta:
    return timedelta(days=settings.GATEWAYZ_RESPONSES_RETENTION_DAYS)


def _charge(cursor: Any, charges: dict[int, list[tuple[str, Decimal]]], now: Any) -> None:
    """One balance update per user (in user order, so writers never deadlock) and the
    ledger rows, each with the balance it left."""
    ledger_rows: list[tuple[Any, ...]] = []
    for user_id in sorted(charges):
        total = sum((cost for _, cost in charges[user_id]), Decimal(0))
        cursor.execute(
            # Usage spends the allowance first: what it takes from the balance comes off the
            # allowance until none is left (the same total, whatever the order of charges).
            f"UPDATE {CreditAccount._meta.db_table} SET balance = balance - %s, "
            "allowance = CASE WHEN allowance > %s THEN allowance - %s ELSE 0 END, "
            "updated_at = %s WHERE user_id = %s RETURNING balance",
            [total, total, total, now, user_id],
        )
        found = cursor.fetchone()
        if found is None:
            account = CreditAccount.objects.create(user_id=user_id, balance=-total)
            balance = account.balance
        else:
            balance = Decimal(str(found[0]))
        # Walk back from the final balance to each charge's balance-after.
        after = balance + total
        for request_id, cost in charges[user_id]:
            after -= cost
            ledger_rows.append((user_id, LedgerEntry.Kind.USAGE, -cost, after, request_id, "", now))
    if ledger_rows and connection.vendor == "postgresql":
        rows = [
            {"user_id": r[0], "amount": str(r[2]), "balance_after": str(r[3]), "reference": r[4]}
            for r in ledger_rows
        ]
        cursor.execute(
            f"INSERT INTO {LedgerEntry._meta.db_table} "
            "(user_id, kind, amount, balance_after, reference, memo, created_at) "
            "SELECT user_id, %s, amount, balance_after, reference, '', %s "
            f"FROM {_pg_recordset(PG_LEDGER_TYPES)}",
            [LedgerEntry.Kind.USAGE, now, orjson.dumps(rows).decode()],
        )
        return
    for chunk in _chunks(ledger_rows):
        cursor.execute(
            f"INSERT INTO {LedgerEntry._meta.db_table} "
            "(user_id, kind, amount, balance_after, reference, memo, created_at) VALUES "
            + ",".join(["(%s,%s,%s,%s,%s,%s,%s)"] * len(chunk)),
            [value for row in chunk for value in row],
        )


Charges = dict[int, list[tuple[str, Decimal]]]  # user id: (request id, cost) of each charge


@transaction.atomic
def usage_batch_apply(*, events: list[bytes], mirror: bool = False) -> int:
    """Writes a batch of usage events (JSON, as the usage stream holds them); returns how
    many requests were new.

    `mirror`: the events were settled in a Redis that has lost its data since (a replayed
    spool, billing.usage_spool; a lost request from a journal file, billing.journal_file),
    so the `avail` Redis has now never took their charges: they are recorded to be mirrored
    into it, as a balance change made while Redis was away is (billing.services), in the
    transaction that charges them."""
    written, charges = usage_batch_write(events=events)
    if mirror:
        # Under the account rows' locks (taken by the charge): a seed of `avail` from the
        # balance either sees these charges in it (and drops the records) or comes first.
        avail_changes_record(
            [
                (user_id, -cost, request_id)
                for user_id in charges
                for request_id, cost in charges[user_id]
            ]
        )
    return written


def usage_batch_write(*, events: list[bytes]) -> tuple[int, Charges]:
    """Writes the request log rows not written yet and charges their costs (call inside a
    transaction); returns how many rows were new and what was charged. A concurrent writer
    settling the same request waits on SettledRequest's key and then skips it, so each
    request is charged by exactly one writer."""
    now = timezone.now()
    charges: Charges = defaultdict(list)
    if connection.vendor == "postgresql":
        connection.ensure_connection()
        # A psycopg cursor that sends parameters apart from the query (server-side binding):
        # Django's binds them into the query text, escaping a batch's big JSON parameter in
        # Python. Same connection, so same transaction; errors as Django's (DataError...).
        with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
            written = _insert_request_logs_pg(cursor, events, now)
            _store_responses_pg(cursor, events, now)
            for request_id, user_id, cost in sorted(written):
                if cost > 0:
                    charges[user_id].append((request_id, cost))
            _charge(cursor, charges, now)
        return len(written), charges
    with connection.cursor() as cursor:
        parsed = [orjson.loads(e) for e in events]
        by_id = {e["request_id"]: e for e in parsed}  # a replay within the batch counts once
        fresh = _insert_request_logs(cursor, list(by_id.values()), now)
        _store_responses([by_id[r] for r in fresh], now)
        for request_id in sorted(fresh):
            event = by_id[request_id]
            cost = Decimal(event["cost"])
            if cost > 0:
                charges[event["user_id"]].append((request_id, cost))
        _charge(cursor, charges, now)
    keys = {by_id[r]["api_key_id"] for r in fresh if by_id[r]["api_key_id"]}
    if keys:
        api_keys_mark_used(key_ids=keys, now=now)
    return len(fresh), charges
