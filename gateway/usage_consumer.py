"""Drains the usage stream into Postgres (with REDIS_URL): every gateway process runs one
consumer of one consumer group, so the work spreads over the replicas. Entries are
acknowledged only after their batch commits; a crashed consumer's entries are claimed by
another after a minute, and replaying them is harmless (the write is idempotent).

It talks to Redis over a connection of its own in hiredis' C (billing.redis_wire), and hands
the events to the writer as the stream holds them: with redis-py and an event parsed and
re-serialised in Python, the consumer cost the gateway ~10 CPU-µs per request more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

import hiredis
from django.db import DataError, IntegrityError

from billing.redis_credit import USAGE_STREAM
from billing.redis_wire import RedisWire
from billing.usage_writer import usage_batch_apply
from config.asyncdb import db_call

log = logging.getLogger(__name__)
GROUP = "usage-writers"
BATCH = 500
CLAIM_IDLE_MS = 60_000
LINGER_SECONDS = 0.1
BLOCK_MS = 1000
DEAD_LETTERS = USAGE_STREAM + ":malformed"

Fields = dict[bytes, bytes]
Entry = tuple[bytes, Fields]


def _entries(raw: list | None) -> list[Entry]:
    """Stream entries from a reply's [[id, [field, value, ...]], ...]; an entry deleted while
    pending comes as [id, nil] and has no fields."""
    return [(entry_id, dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {})
            for entry_id, flat in raw or ()]  # fmt: skip


class UsageConsumer:
    def __init__(self, url: str) -> None:
        # Its own connection: a blocking read must not hold up the hot path's commands, and
        # may take BLOCK_MS, so the timeout (a stuck Redis) is longer than that.
        self.wire = RedisWire(url, timeout=BLOCK_MS / 1000 + 5)
        self.name = f"{socket.gethostname()}-{os.getpid()}"

    async def _ensure_group(self) -> None:
        try:
            await self.wire.call("XGROUP", "CREATE", USAGE_STREAM, GROUP, "0", "MKSTREAM")
        except hiredis.ReplyError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    async def _set_aside(self, entry_id: bytes, fields: Fields, why: str) -> None:
        # An entry that cannot be written would fail every batch it is in, for ever, and
        # hold back everyone's billing: it is set aside, whole, for a person to look at.
        log.error("usage entry %r %s; moved to %s", entry_id, why, DEAD_LETTERS)
        flat = [part for pair in fields.items() for part in pair]
        await self.wire.call("XADD", DEAD_LETTERS, "*", b"id", entry_id, *flat)

    async def _apply(self, batch: list[tuple[bytes, Fields, bytes]]) -> None:
        """Writes the batch's events. Should the database refuse one (not an event, bad data,
        a user since deleted; not a lost connection, which is retried whole), halving the
        batch finds it: the rest is written and it alone is set aside."""
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

    async def _write(self, entries: list[Entry]) -> None:
        batch = []
        for entry_id, fields in entries:
            event = fields.get(b"e")
            if event is None:
                await self._set_aside(entry_id, fields, "holds no event")
            else:
                batch.append((entry_id, fields, event))
        if batch:
            await self._apply(batch)
        ids = [entry_id for entry_id, _ in entries]
        # Sent together, in one write.
        await asyncio.gather(
            self.wire.call("XACK", USAGE_STREAM, GROUP, *ids),
            self.wire.call("XDEL", USAGE_STREAM, *ids),
        )

    async def _read(self, start: str, *block: str | int) -> list[Entry]:
        reply = await self.wire.call(
            "XREADGROUP", "GROUP", GROUP, self.name, "COUNT", BATCH, *block,
            "STREAMS", USAGE_STREAM, start,
        )  # fmt: skip
        return _entries(reply[0][1]) if reply else []

    async def _next_batch(self) -> list[Entry]:
        # Our own unacknowledged entries first (a failed write), then a dead consumer's,
        # then new ones.
        mine = await self._read("0")
        if mine:
            return mine
        claimed = await self.wire.call(
            "XAUTOCLAIM", USAGE_STREAM, GROUP, self.name, CLAIM_IDLE_MS, "0-0", "COUNT", BATCH
        )
        if claimed[1]:
            return _entries(claimed[1])
        return await self._read(">", "BLOCK", BLOCK_MS)

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
        await self.wire.close()
