"""Stored Responses API answers on the database: read one with its whole conversation (one
indexed query, following `previous_response_id` back), delete one, expire the old. They are
written by the usage writer (billing.usage_writer), with their request log row."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from django.db import connection
from django.utils import timezone

from billing.models import StoredResponse

# The conversations kept as chains are bounded: past this depth the oldest turns are left
# out (a chain this long would not fit any model's context anyway).
MAX_CHAIN = 1000


def stored_chain(*, response_id: str, user_id: int) -> list[dict[str, Any]]:
    """The stored response `response_id` of `user_id` and those it continues, oldest first
    (each: id, input, output, response); empty if it is not theirs, expired or gone."""
    table = StoredResponse._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE chain(id, previous_response_id, input_items, output_items, "
            f"response, depth) AS ("
            f"SELECT id, previous_response_id, input_items, output_items, response, 0 "
            f"FROM {table} WHERE id = %s AND user_id = %s AND expires_at > %s "
            f"UNION ALL SELECT r.id, r.previous_response_id, r.input_items, r.output_items, "
            f"r.response, c.depth + 1 FROM {table} r JOIN chain c "
            f"ON r.id = c.previous_response_id AND r.user_id = %s "
            f"WHERE c.depth < %s AND r.expires_at > %s) "
            f"SELECT id, input_items, output_items, response FROM chain ORDER BY depth DESC",
            [response_id, user_id, timezone.now(), user_id, MAX_CHAIN, timezone.now()],
        )
        rows = cursor.fetchall()
    return [
        {"id": r[0], "input": _json(r[1]), "output": _json(r[2]), "response": _json(r[3])}
        for r in rows
    ]


def _json(value: Any) -> Any:
    """A JSON column as Python (SQLite hands it back as text)."""
    return orjson.loads(value) if isinstance(value, str | bytes) else value


def stored_delete(*, response_id: str, user_id: int, unwritten: bool = False) -> bool:
    """Deletes a stored answer. `unwritten`: the answer is the user's but its row may not be
    written yet; an expired row takes its place, so that the writer's insert, coming later,
    finds its id taken and keeps nothing (reads skip expired rows; the expiry job deletes
    it)."""
    mine = StoredResponse.objects.filter(id=response_id, user_id=user_id)
    deleted, _ = mine.delete()
    if unwritten and not deleted:
        now = timezone.now()
        _, created = StoredResponse.objects.get_or_create(
            id=response_id, defaults={"user_id": user_id, "expires_at": now}
        )
        if not created:  # the writer's row came in between: it goes too
            mine.filter(expires_at__gt=now).delete()
    return bool(deleted) or unwritten


def stored_expire(*, now: datetime | None = None) -> int:
    deleted, _ = StoredResponse.objects.filter(expires_at__lte=now or timezone.now()).delete()
    return deleted
