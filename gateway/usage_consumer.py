"""Drains the usage stream into Postgres (with REDIS_URL): every gateway process runs one
consumer of one consumer group, so the work spreads over the replicas. Entries are
acknowledged only after their batch commits; a crashed consumer's entries are claimed by
another once idle for CLAIM_IDLE_MS, and replaying them is harmless (the write is
idempotent, so a slow consumer's entries claimed twice are written once).

While the database write fails, batches go to a local spool instead (billing.usage_spool),
on disk before they are acknowledged, so a Redis that restarts empty meanwhile loses none
of them; they are replayed into the database once it answers. Reads then also fetch the
Redis epoch (a random id a fresh Redis gets on first use, in the same write as the read,
so of the same Redis), which tells the replay whether the `avail` Redis has now took the
spooled charges: if Redis lost its data since, they are mirrored into the new one.

Its replay loop also settles what dead processes on the host had in flight when Redis has
lost their holds since (their journal files, billing.journal_file).

It talks to Redis over a connection of its own in hiredis' C (core.redis_wire), and hands
the events to the writer as the stream holds them: with redis-py and an event parsed and
re-serialised in Python, the consumer cost the gateway ~10 CPU-µs per request more.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import hiredis
from django.conf import settings
from django.db import DataError, IntegrityError

from billing.journal_file import journal_files_settle
from billing.redis_credit import PREFIX, credit_prefixes, usage_stream_key
from billing.services import credit_pending_apply
from billing.usage_spool import UsageSpool
from billing.usage_writer import usage_batch_apply
from core.asyncdb import db_call
from core.redis_cluster import hot_wire
from core.redis_topology import cluster_seeds
from core.redis_wire import RedisWireError, Wire

log = logging.getLogger(__name__)
GROUP = "usage-writers"
BATCH = 500
# Short: a killed process's unwritten entries live only in Redis until claimed, and a Redis
# that restarts empty (its volume lost) would take them along. A batch is written in
# milliseconds; one held longer by a slow consumer is written twice, harmlessly.
CLAIM_IDLE_MS = 5_000
LINGER_SECONDS = 0.1
BLOCK_MS = 1000
MALFORMED = ":malformed"  # after a stream's name: entries set aside
REPLAY_SECONDS = 1.0  # how often the spool is looked at (and the database tried)
REPLAY_BACKOFF_MAX = 5.0

Fields = dict[bytes, bytes]
Entry = tuple[bytes, Fields]


@dataclass(frozen=True)
class _Group:
    """One group's usage stream and Redis epoch (core.redis_groups; one group: the plain
    names). A spooled record's epoch token is the group's tag and its epoch."""

    tag: str
    stream: str
    epoch: str

    @classmethod
    def of(cls, prefix: str) -> _Group:
        return cls(prefix[len(PREFIX) :], usage_stream_key(prefix), prefix + "epoch")


def _entries(raw: list | None) -> list[Entry]:
    """Stream entries from a reply's [[id, [field, value, ...]], ...]; an entry deleted while
    pending comes as [id, nil] and has no fields."""
    return [
        (entry_id, dict(zip(flat[::2], flat[1::2], strict=True)) if flat else {})
        for entry_id, flat in raw or ()
    ]


class UsageConsumer:
    def __init__(self, url: str) -> None:
        self.name = f"{socket.gethostname()}-{os.getpid()}"
        self.spool = UsageSpool(settings.GATEWAYZ_USAGE_SPOOL_DIR, socket.gethostname())
        self.spooling = False  # the database write failed: batches go to the spool
        self._spool_lock = asyncio.Lock()  # an append and a seal never overlap
        self._unmirrored = False  # replayed charges wait to be mirrored into Redis
        self.groups = [_Group.of(prefix) for prefix in credit_prefixes()]
        self._by_stream = {group.stream.encode(): group for group in self.groups}
        self._by_tag = {group.tag: group for group in self.groups}
        # Its own connections: a blocking read must not hold up the hot path's commands, and
        # may take BLOCK_MS, so the timeout (a stuck Redis) is longer than that. One server
        # takes one read over every group's stream; a Cluster cannot (the streams are in
        # different slots), so there each group is read on its own, on a connection of its
        # own (a blocking read holds up the commands behind it on its connection).
        timeout = BLOCK_MS / 1000 + 5
        self.lanes = [[group] for group in self.groups] if cluster_seeds() else [self.groups]
        self._wires: dict[str, Wire] = {}
        for lane in self.lanes:
            wire = hot_wire(url, timeout=timeout)
            self._wires.update((group.tag, wire) for group in lane)

    def _wire(self, group: _Group) -> Wire:
        return self._wires[group.tag]

    async def _ensure_group(self, lane: list[_Group]) -> None:
        for group in lane:
            create = ("XGROUP", "CREATE", group.stream, GROUP, "0", "MKSTREAM")
            try:
                await self._wire(group).call(*create)
            except hiredis.ReplyError as exc:
                if "BUSYGROUP" not in str(exc):
                    raise

    async def _set_aside(self, group: _Group, entry_id: bytes, fields: Fields, why: str) -> None:
        # An entry that cannot be written would fail every batch it is in, for ever, and
        # hold back everyone's billing: it is set aside, whole, for a person to look at.
        dead_letters = group.stream + MALFORMED
        log.error("usage entry %r %s; moved to %s", entry_id, why, dead_letters)
        flat = [part for pair in fields.items() for part in pair]
        await self._wire(group).call("XADD", dead_letters, "*", b"id", entry_id, *flat)

    async def _apply(
        self, group: _Group, batch: list[tuple[bytes, Fields, bytes]], mirror: bool = False
    ) -> None:
        """Writes the batch's events. Should the database refuse one (not an event, bad data,
        a user since deleted; not a lost connection, which is retried whole), halving the
        batch finds it: the rest is written and it alone is set aside."""
        try:
            await db_call(usage_batch_apply, events=[event for _, _, event in batch], mirror=mirror)
        except (DataError, IntegrityError) as exc:
            if len(batch) == 1:
                entry_id, fields, _ = batch[0]
                why = f"was refused by the database ({exc})"
                await self._set_aside(group, entry_id, fields, why)
                return
            half = len(batch) // 2
            await self._apply(group, batch[:half], mirror)
            await self._apply(group, batch[half:], mirror)

    async def _write(self, group: _Group, entries: list[Entry], epoch: str = "") -> None:
        batch = []
        for entry_id, fields in entries:
            event = fields.get(b"e")
            if event is None:
                await self._set_aside(group, entry_id, fields, "holds no event")
            else:
                batch.append((entry_id, fields, event))
        if batch and self.spooling:
            if not epoch:
                return  # read before spooling began: read again, with the epoch
            token = group.tag + epoch
            async with self._spool_lock:
                await asyncio.to_thread(self.spool.append, token, [e for _, _, e in batch])
        elif batch:
            try:
                await self._apply(group, batch)
            except (RedisWireError, hiredis.ReplyError):
                raise
            except Exception:
                # The database cannot take it: unacknowledged, the batch is read again with
                # the epoch, and spooled (the replay tries the database every second).
                log.exception("writing usage to the database failed; spooling it on disk")
                self.spooling = True
                return
        ids = [entry_id for entry_id, _ in entries]
        # Sent together, in one write.
        wire = self._wire(group)
        await asyncio.gather(
            wire.call("XACK", group.stream, GROUP, *ids), wire.call("XDEL", group.stream, *ids)
        )

    async def _call(self, groups: list[_Group], *command: str | int) -> tuple[Any, list[str]]:
        """The command's reply and, while spooling, the Redis epoch of each group it read,
        all sent in one write, so answered by the same Redis (a restart drops the
        connection)."""
        wire = self._wire(groups[0])  # a lane's groups share it
        if not self.spooling:
            return await wire.call(*command), [""] * len(groups)
        epochs = [
            call
            for group in groups
            for call in (
                wire.call("SET", group.epoch, os.urandom(8).hex(), "NX"),
                wire.call("GET", group.epoch),
            )
        ]
        *answers, reply = await asyncio.gather(*epochs, wire.call(*command))
        return reply, [epoch.decode() for epoch in answers[1::2]]

    async def _read(
        self, groups: list[_Group], start: str, *block: str | int
    ) -> list[tuple[_Group, list[Entry], str]]:
        """One XREADGROUP over the groups' streams: what each had, with its epoch."""
        reader = ("GROUP", GROUP, self.name, "COUNT", BATCH, *block)
        streams = [g.stream for g in groups]
        reply, epochs = await self._call(
            groups, "XREADGROUP", *reader, "STREAMS", *streams, *([start] * len(groups))
        )
        epoch_of = dict(zip(streams, epochs, strict=True))
        found = []
        for stream, raw in reply or ():
            group = self._by_stream[stream]
            entries = _entries(raw)
            if entries:
                found.append((group, entries, epoch_of[group.stream]))
        return found

    async def _next_batches(self, lane: list[_Group]) -> list[tuple[_Group, list[Entry], str]]:
        # Our own unacknowledged entries first (a failed write), then a dead consumer's,
        # then new ones: with one blocking read over every stream of the lane.
        mine = await self._read(lane, "0")
        if mine:
            return mine
        claimed = []
        for group in lane:
            reply, [epoch] = await self._call(
                [group],
                "XAUTOCLAIM",
                group.stream,
                GROUP,
                self.name,
                CLAIM_IDLE_MS,
                "0-0",
                "COUNT",
                BATCH,
            )
            if reply[1]:
                claimed.append((group, _entries(reply[1]), epoch))
        if claimed:
            return claimed
        return await self._read(lane, ">", "BLOCK", BLOCK_MS)

    async def _replay(self) -> None:
        """Writes what the spool holds (this process's and any dead one's) to the database,
        and goes back to writing there; raises if the database still fails."""
        async with self._spool_lock:
            self.spool.seal()
        for path in self.spool.files():
            fd = self.spool.claim(path)
            if fd is None:
                continue  # a live process is appending to it
            try:
                records = await asyncio.to_thread(self.spool.read, fd)
                if records:
                    self._unmirrored |= await self._replay_records(records)
            except BaseException:
                self.spool.release(fd)
                raise
            self.spool.discard(path, fd)
        if self.spooling:
            await db_call(usage_batch_apply, events=[])  # the database answers again
            self.spooling = False
            log.warning("writing usage to the database works again; the spool is replayed")

    async def _current_epoch(self, group: _Group) -> str:
        wire = self._wire(group)
        _, current = await asyncio.gather(
            wire.call("SET", group.epoch, os.urandom(8).hex(), "NX"), wire.call("GET", group.epoch)
        )
        return str(current.decode())

    def _token_group(self, token: str) -> tuple[_Group, str]:
        """A spooled record's group and epoch, from its token (`{g7}:` + epoch)."""
        tag, _, epoch = token.rpartition("}:")
        tag = tag + "}:" if tag else ""
        group = self._by_tag.get(tag, self.groups[0])
        return group, epoch

    async def _replay_records(self, records: list[tuple[str, bytes]]) -> bool:
        """Writes spooled (epoch token, event) records; True if some were mirrored into
        Redis."""
        by_token: dict[str, list[bytes]] = defaultdict(list)
        for token, event in records:
            by_token[token].append(event)
        mirrored = False
        for token, events in by_token.items():
            group, epoch = self._token_group(token)
            # Read from a Redis that has lost its data since: the `avail` Redis has now
            # never took their charges.
            mirror = epoch != await self._current_epoch(group)
            mirrored |= mirror
            for at in range(0, len(events), BATCH):
                chunk = [(b"spool", {b"e": e}, e) for e in events[at : at + BATCH]]
                await self._apply(group, chunk, mirror)
        return mirrored

    async def _replay_loop(self) -> None:
        wait = REPLAY_SECONDS
        failing = False
        while True:
            await asyncio.sleep(wait)
            try:
                if self.spooling or self.spool.files():
                    await self._replay()
                # What dead processes left in flight and Redis has lost since (their
                # journal files); mirrored into `avail` below.
                if await db_call(journal_files_settle, settings.GATEWAYZ_USAGE_SPOOL_DIR):
                    self._unmirrored = True
                if self._unmirrored:
                    # Charges replayed from a Redis that lost its data, into the new one's
                    # `avail` (or dropped, if none is seeded yet: the seed has them).
                    await db_call(credit_pending_apply)
                    self._unmirrored = False
                wait, failing = REPLAY_SECONDS, False
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                (log.debug if failing else log.warning)(
                    "the usage spool waits (%s: %s)", type(exc).__name__, exc
                )  # said once per outage, not once per try
                wait, failing = min(wait * 2, REPLAY_BACKOFF_MAX), True

    async def run(self) -> None:
        replayer = asyncio.create_task(self._replay_loop())
        try:
            await self._consume()
        finally:
            replayer.cancel()
            async with self._spool_lock:
                self.spool.seal()

    async def _consume(self) -> None:
        await asyncio.gather(*(self._consume_lane(lane) for lane in self.lanes))

    async def _consume_lane(self, lane: list[_Group]) -> None:
        backoff = 0.1
        failing = False
        while True:
            try:
                await self._ensure_group(lane)
                while True:
                    batches = await self._next_batches(lane)
                    for group, entries, epoch in batches:
                        await self._write(group, entries, epoch)
                    if max((len(b[1]) for b in batches), default=0) < BATCH and not self.spooling:
                        # Let a small batch grow: fewer, larger transactions cost far less
                        # per request, and the ledger trails the traffic by a moment only.
                        # (Not while spooling: what Redis holds unread is what its loss
                        # would lose.)
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
                # Not long while spooling: what waits unread in Redis is what it could lose.
                backoff = min(backoff * 2, REPLAY_BACKOFF_MAX if self.spooling else 30.0)

    async def close(self) -> None:
        for wire in dict.fromkeys(self._wires.values()):
            await wire.close()
