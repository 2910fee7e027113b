"""The request journal's copy on local disk, for a Redis that loses its data.

The journal of a request admitted in Redis lives with its hold (billing.lost_requests): if
Redis restarts empty before a dead process's holds fall due, the requests that process had
in flight would leave no record and never be billed. So each gateway process also appends
its journal entries to a file of its own, in GATEWAYZ_USAGE_SPOOL_DIR: admission's entry,
each record of what a stream delivered, and a mark once the request is settled. A write
reaches the kernel's page cache, which outlives a killed process (a lost machine takes the
file with it; its Redis holds are then all there is). No fsync, no round trip: one
`write` per admission and per stream record; the settled marks wait for the next write
(a mark lost with its process only costs the reader a look in Redis).

Any gateway process on the host settles what a dead one left (`journal_files_settle`,
from the usage consumer): a file no live process holds (each writer keeps an `flock` on
its own), once no usage spool waits to be replayed. For each request with no settled
mark, in one transaction in Redis: if its hold is still there, the hold-release job will
settle it from the journal Redis keeps (the file waits); if Redis marked it settled, it
was; else Redis lost it, and it is settled here from the file as the job would have (a
`worker_lost` row, the delivered cost charged), and its charge mirrored into the new
Redis' `avail`. The write is idempotent on request id, so a request whose usage reached
Postgres before Redis lost it is not charged again.

A line: b"<A|D|S> <request id> <entry>\\n". A file is rewritten with only the requests in
flight once it grows past ROTATE_BYTES.
"""

from __future__ import annotations

import fcntl
import itertools
import logging
import os
import time
from collections import defaultdict
from pathlib import Path
from typing import cast

import orjson
from django.db import DataError, IntegrityError

from billing.redis_credit import (
    PREFIX,
    hold_key,
    settled_key,
    user_prefix,
)
from billing.usage_spool import SUFFIX as SPOOL_SUFFIX
from billing.usage_spool import UsageSpool
from billing.usage_writer import usage_batch_apply
from core.journal_entries import lost_outcome
from core.redis_sync import sync_client

log = logging.getLogger(__name__)
SUFFIX = ".journal"
ROTATE_BYTES = 4 << 20
ADMITTED, DELIVERED, SETTLED = b"A", b"D", b"S"


class JournalFile:
    """One process's journal file. Called on the event loop only."""

    def __init__(
        self,
        directory: Path | str,
        name: str,
        stale_seconds: float,
        rotate_bytes: int = ROTATE_BYTES,
    ) -> None:
        self.directory = Path(directory)
        self.name = name
        self.stale_seconds = stale_seconds  # an entry this old is no one's in flight
        self.rotate_bytes = rotate_bytes
        self._serial = itertools.count()
        self._fd: int | None = None
        self._path: Path | None = None
        self._size = 0
        # Requests in flight: their admission line, their last delivery line, last written.
        self._live: dict[str, tuple[bytes, bytes, float]] = {}
        self._marks: list[bytes] = []  # settled marks not written yet
        self.broken = False  # the directory cannot be written: Redis' journal alone stands

    def admitted(self, request_id: str, entry: bytes) -> None:
        line = b"A %s %s\n" % (request_id.encode(), entry)
        self._live[request_id] = (line, b"", time.monotonic())
        self._write(line)

    def delivered(self, request_id: str, entry: bytes) -> None:
        live = self._live.get(request_id)
        if live is not None:
            line = b"D %s %s\n" % (request_id.encode(), entry)
            self._live[request_id] = (live[0], line, time.monotonic())
            self._write(line)

    def settled(self, request_id: str) -> None:
        if self._live.pop(request_id, None) is not None:
            self._marks.append(b"S %s\n" % request_id.encode())

    def _write(self, line: bytes) -> None:
        if self.broken:
            return
        try:
            if self._fd is None:
                self._open()
                assert self._fd is not None
            if self._marks:
                line = b"".join(self._marks) + line
                self._marks.clear()
            self._size += os.write(self._fd, line)
            if self._size > self.rotate_bytes:
                self._rotate()
        except OSError as exc:
            self.broken = True
            log.error("the journal file cannot be written (%s); Redis' journal alone stands", exc)

    def _open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # A name no file has had: a process restarted in a container often gets the pid
        # of the one before, whose file may still wait to be settled by another.
        name = f"{self.name}-{os.getpid()}-{os.urandom(4).hex()}-{next(self._serial)}"
        path = self.directory / f"{name}{SUFFIX}"
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        self._fd, self._path, self._size = fd, path, 0

    def _rotate(self) -> None:
        """A new file holding the requests in flight; then the old one goes."""
        old_fd, old_path = self._fd, self._path
        stale = time.monotonic() - self.stale_seconds
        for request_id, (_, _, at) in list(self._live.items()):
            if at < stale:  # never settled here: the hold-release job had it long ago
                del self._live[request_id]
        self._open()
        assert self._fd is not None
        self._marks.clear()
        lines = b"".join(a + d for a, d, _ in self._live.values())
        if lines:
            self._size = os.write(self._fd, lines)
        if old_path is not None:
            old_path.unlink(missing_ok=True)
        if old_fd is not None:
            os.close(old_fd)

    def close(self) -> None:
        """At shutdown: the file goes if nothing is in flight, else it stays for the next."""
        if self._fd is None:
            return
        if not self._live and self._path is not None:
            self._path.unlink(missing_ok=True)
        elif self._marks:
            os.write(self._fd, b"".join(self._marks))
        os.close(self._fd)
        self._fd = None


def _unsettled(data: bytes) -> dict[str, tuple[bytes, bytes | None]]:
    """(admission entry, last delivery entry) of each request a file has no settled mark for."""
    open_: dict[str, tuple[bytes, bytes | None]] = {}
    for line in data.split(b"\n"):
        kind, _, rest = line.partition(b" ")
        request_id, _, entry = rest.partition(b" ")
        rid = request_id.decode(errors="replace")
        if kind == ADMITTED and entry:
            open_[rid] = (entry, None)
        elif kind == DELIVERED and entry and rid in open_:
            open_[rid] = (open_[rid][0], entry)
        elif kind == SETTLED:
            open_.pop(rid, None)
    return open_


def _where(requests: list[tuple[str, str]]) -> list[tuple[bool, bool]]:
    """(hold still in Redis, settled by Redis) per (request id, its group's prefix), each
    group's read at one instant (one transaction: a Cluster's cannot span slots)."""
    by_group: dict[str, list[int]] = defaultdict(list)
    for at, (_, prefix) in enumerate(requests):
        by_group[prefix].append(at)
    found: list[tuple[bool, bool]] = [(False, False)] * len(requests)
    for prefix, places in by_group.items():
        pipe = sync_client().pipeline(transaction=True)
        for at in places:
            pipe.exists(hold_key(requests[at][0], prefix))
            pipe.exists(settled_key(requests[at][0], prefix))
        flags = cast(list[int], pipe.execute())
        for n, at in enumerate(places):
            found[at] = (bool(flags[2 * n]), bool(flags[2 * n + 1]))
    return found


def _prefix_of(admission: bytes) -> str:
    """The credit prefix of the request's customer, read from its admission entry."""
    try:
        return user_prefix(int(orjson.loads(admission)[0]))
    except (ValueError, TypeError, IndexError):
        return PREFIX  # unreadable: dropped below, whatever Redis says


def _apply(events: list[bytes]) -> int:
    """Writes the events, mirrored into Redis' `avail`; one the database refuses (a user
    since deleted) is logged and dropped rather than holding the rest back."""
    try:
        return usage_batch_apply(events=events, mirror=True)
    except (DataError, IntegrityError):
        if len(events) == 1:
            log.exception("a lost request cannot be recorded: %r", events[0])
            return 0
        half = len(events) // 2
        return _apply(events[:half]) + _apply(events[half:])


def _settle_file(path: Path, fd: int) -> int:
    """Settles what Redis lost of one dead process's file; returns how many requests."""
    data = b""
    while chunk := os.read(fd, 1 << 20):
        data += chunk
    open_ = _unsettled(data)
    ids = list(open_)
    held, events = [], []
    where = _where([(r, _prefix_of(open_[r][0])) for r in ids]) if ids else []
    for request_id, (held_in_redis, settled) in zip(ids, where, strict=True):
        if held_in_redis:
            held.append(request_id)
        elif not settled:
            admission, delivery = open_[request_id]
            try:
                events.append(lost_outcome(request_id, admission, delivery).dated_event())
            except (ValueError, TypeError, ArithmeticError):
                log.exception("the journal of %s cannot be read; it is dropped", request_id)
    written = _apply(events) if events else 0
    if held:
        # The rest waits, in a file of its own, for the hold-release job to settle it.
        rest = b"".join(
            b"A %s %s\n" % (r.encode(), open_[r][0])
            + (b"D %s %s\n" % (r.encode(), open_[r][1]) if open_[r][1] else b"")
            for r in held
        )
        if len(held) == len(ids):
            UsageSpool.release(fd)
            return written
        kept = path.with_name(f"kept-{os.getpid()}-{time.monotonic_ns()}")
        kept.write_bytes(rest)
        kept.rename(kept.with_suffix(SUFFIX))  # whole, before anyone can claim it
    UsageSpool.discard(path, fd)
    return written


def journal_files_settle(directory: Path | str) -> int:
    """Settles, from the journal files of dead processes on this host, the requests Redis
    lost; returns how many. Waits while a usage spool is left to replay: a request whose
    usage is spooled would otherwise be recorded here first, as lost."""
    directory = Path(directory)
    try:
        if any(directory.glob("*" + SPOOL_SUFFIX)):
            return 0
        paths = sorted(directory.glob("*" + SUFFIX))
    except OSError:
        return 0
    settled = 0
    for path in paths:
        fd = UsageSpool.claim(path)
        if fd is None:
            continue  # its process is alive
        try:
            settled += _settle_file(path, fd)
        except BaseException:
            UsageSpool.release(fd)
            raise
    if settled:
        log.warning("settled %d requests from journal files Redis had lost", settled)
    return settled
