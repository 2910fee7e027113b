"""A local spool for settled usage the database cannot take right now.

Settled usage waits in the Redis usage stream until a consumer writes it to Postgres. While
Postgres is unreachable it would wait there, and a Redis that restarts empty would take it
along. So while the database write fails, the consumer (gateway.usage_consumer) appends
what it reads to a file of its own here, fsync'd once per batch, before it acknowledges the
entries in Redis; once the database answers, the files are replayed into it (the write is
idempotent on request id, so a record replayed twice, or also still in the stream, is
written once). When the database works, nothing is written here.

A file is locked (flock) by the process writing it for as long as it has it open; any
file nobody holds (sealed by its writer, or left by a dead process) can be claimed and
replayed by any process on the host. Each record carries the Redis epoch it was read
under (gateway.usage_consumer), so a replay knows whether Redis' `avail` already took it.

Record: b"<epoch> <length> " + event + b"\\n". A record cut short by a crash mid-append was
never acknowledged in Redis, so it is skipped.
"""

from __future__ import annotations

import fcntl
import itertools
import os
from pathlib import Path

SUFFIX = ".spool"


class UsageSpool:
    def __init__(self, directory: Path | str, name: str) -> None:
        self.directory = Path(directory)
        self.name = name
        self._serial = itertools.count()
        self._fd: int | None = None  # the file being appended to, locked

    def append(self, epoch: str, events: list[bytes]) -> None:
        """Appends the events and waits until they are on disk."""
        if self._fd is None:
            self.directory.mkdir(parents=True, exist_ok=True)
            path = self.directory / f"{self.name}-{os.getpid()}-{next(self._serial)}{SUFFIX}"
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
        head = epoch.encode()
        os.write(self._fd, b"".join(b"%s %d %s\n" % (head, len(e), e) for e in events))
        os.fsync(self._fd)

    def seal(self) -> None:
        """Closes the file being appended to, so that it can be replayed; the next append
        starts another."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def files(self) -> list[Path]:
        try:
            return sorted(self.directory.glob("*" + SUFFIX))
        except OSError:
            return []

    @staticmethod
    def claim(path: Path) -> int | None:
        """An open, locked descriptor of a file no one else holds, or None."""
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            return None  # replayed and removed by another process meanwhile
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return None
        if os.fstat(fd).st_nlink == 0:  # removed between our open and our lock
            os.close(fd)
            return None
        return fd

    @staticmethod
    def read(fd: int) -> list[tuple[str, bytes]]:
        """The (epoch, event) records of a claimed file, up to a record cut short."""
        data = b""
        while chunk := os.read(fd, 1 << 20):
            data += chunk
        records, at = [], 0
        while at < len(data):
            try:
                epoch_end = data.index(b" ", at)
                length_end = data.index(b" ", epoch_end + 1)
                length = int(data[epoch_end + 1 : length_end])
            except ValueError:
                break
            end = length_end + 1 + length
            if data[end : end + 1] != b"\n":
                break
            records.append((data[at:epoch_end].decode(), data[length_end + 1 : end]))
            at = end + 1
        return records

    @staticmethod
    def discard(path: Path, fd: int) -> None:
        """Removes a claimed file once replayed (still holding its lock)."""
        path.unlink(missing_ok=True)
        os.close(fd)

    @staticmethod
    def release(fd: int) -> None:
        os.close(fd)
