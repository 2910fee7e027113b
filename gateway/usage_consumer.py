"""Drains the usage stream into Postgres (with REDIS_URL): every gateway process runs one
consumer of one consumer group, so the work spreads over the replicas. Entries are
acknowledged only after their batch commits; a crashed consumer's entries are claimed by
another after a minute, and replaying them is harmless (the write is idempotent)."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from typing import Any

import orjson
import redis.asyncio as aioredis
from django.db import DataError, IntegrityError
from redis.exceptions import ResponseError

from billing.redis_credit import USAGE_STREAM
from billing.usage_writer import usage_batch_apply
from config.asyncdb import db_call

log = logging.getLogger(__name__)
GROUP = "usage-writers"
BATCH = 500
CLAIM_IDLE_MS = 60_000
LINGER_SECONDS = 0.1
DEAD_LETTERS = USAGE_STREAM + ":malformed"
REQUIRED_FIELDS = frozenset({"request_id", "user_id", "status", "cost"})


def _event(fields: dict[bytes, bytes]) -> dict[str, Any] | None:
    """The entry's usage event, or None if it is not one."""
    try:
        event = orjson.loads(fields[b"e"])
    except (KeyError, orjson.JSONDecodeError):
        return None
    if not isinstance(event, dict) or not event.keys() >= REQUIRED_FIELDS:
        return None
    return event


class UsageConsumer:
    def __init__(self, url: str) -> None:
        self.client = aioredis.Redis.from_url(url)
        self.name = f"{socket.gethostname()}-{os.getpid()}"

    async def _ensure_group(self) -> None:
        try:
            await self.client.xgroup_create(USAGE_STREAM, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _set_aside(self, entry_id: bytes, fields: dict[bytes, bytes], why: str) -> None:
        # An entry that cannot be written would fail every batch it is in, for ever, and
        # hold back everyone's billing: it is set aside, whole, for a person to look at.
        log.error("usage entry %r %s; moved to %s", entry_id, why, DEAD_LETTERS)
        dead: dict[Any, Any] = {b"id": entry_id, **fields}
        await self.client.xadd(DEAD_LETTERS, dead)

    async def _apply(self, batch: list[tuple[bytes, dict[bytes, bytes], dict[str, Any]]]) -> None:
        """Writes the batch's events. Should the database refuse one (bad data, or a user
        since deleted; not a lost connection, which is retried whole), halving the batch
        finds it: the rest is written and it alone is set aside."""
        try:
            await db_call(usage_batch_apply, events=[event for _, _, event in batch])
        except (DataError, IntegrityError) as exc:
            if len(batch) == 1:
                entry_id, fields, _ = batch[0]
                await self._set_aside(entry_id, fields, f"was refused by the database ({exc})")
                return
            half = len(batch) // 2
            await self._apply(batch[:half])
            await self._apply(batch[half:])

    async def _write(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> None:
        batch = []
        for entry_id, fields in entries:
            event = _event(fields)
            if event is None:
                await self._set_aside(entry_id, fields, "is malformed")
            else:
                batch.append((entry_id, fields, event))
        if batch:
            await self._apply(batch)
        ids = [entry_id for entry_id, _ in entries]
        await self.client.xack(USAGE_STREAM, GROUP, *ids)
        await self.client.xdel(USAGE_STREAM, *ids)

    async def _next_batch(self) -> list[tuple[bytes, dict[bytes, bytes]]]:
        # Our own unacknowledged entries first (a failed write), then a dead consumer's,
        # then new ones.
        for start in ("0",):
            mine = await self.client.xreadgroup(
                GROUP, self.name, {USAGE_STREAM: start}, count=BATCH
            )
            if mine and mine[0][1]:
                return list(mine[0][1])
        _, claimed, _ = await self.client.xautoclaim(
            USAGE_STREAM, GROUP, self.name, CLAIM_IDLE_MS, "0-0", count=BATCH
        )
        if claimed:
            return list(claimed)
        new = await self.client.xreadgroup(
            GROUP, self.name, {USAGE_STREAM: ">"}, count=BATCH, block=1000
        )
        return list(new[0][1]) if new else []

    async def run(self) -> None:
        backoff = 0.1
        failing = False
        while True:
            try:
                await self._ensure_group()
                while True:
                    entries = await self._next_batch()
                    if entries:
                        await self._write(entries)
                    if len(entries) < BATCH:
                        # Let a small batch grow: fewer, larger transactions cost far less
                        # per request, and the ledger trails the traffic by a moment only.
                        await asyncio.sleep(LINGER_SECONDS)
                    backoff = 0.1
                    if failing:
                        log.warning("writing usage to the database works again")
                        failing = False
            except asyncio.CancelledError:
                raise
            except Exception:
                # Said once per outage (Redis or the database away), not once per retry.
                if not failing:
                    log.exception("writing usage to the database failed; retrying until it works")
                    failing = True
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 30.0)

    async def close(self) -> None:
        await self.client.aclose()
