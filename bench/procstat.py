"""CPU time and memory of server processes, read from /proc (Linux)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """The process and all its descendants."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(children.get(p, []))
    return found


def by_name(*names: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                pids.append(int(entry.name))
    return pids


def pin(pids: list[int], cores: str) -> dict[int, str]:
    """Moves every thread of each process to `cores`; returns each one's former affinity."""
    former = {}
    for pid in pids:
        try:
            out = subprocess.run(
                ["taskset", "-p", "-c", str(pid)], capture_output=True, text=True, check=True
            ).stdout
            former[pid] = out.rsplit(":", 1)[1].strip()
            subprocess.run(
                ["taskset", "-a", "-p", "-c", cores, str(pid)], capture_output=True, check=True
            )
        except (subprocess.CalledProcessError, IndexError):
            continue
    return former


def unpin(former: dict[int, str]) -> None:
    for pid, cores in former.items():
        subprocess.run(
            ["taskset", "-a", "-p", "-c", cores, str(pid)], capture_output=True, check=False
        )


def cpu_by_pid(pids: list[int]) -> dict[int, float]:
    """CPU seconds (user + system) of each process still alive."""
    seconds = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        seconds[pid] = (int(fields[11]) + int(fields[12])) / TICKS
    return seconds


def cpu_seconds(pids: list[int]) -> float:
    return sum(cpu_by_pid(pids).values())


def cpu_delta(before: dict[int, float], after: dict[int, float]) -> float:
    """CPU spent between two readings by the processes present in both (processes that
    came or went in between, such as a Postgres backend, would otherwise skew it)."""
    return sum(after[pid] - before[pid] for pid in after.keys() & before.keys())


def rss_mb(pids: list[int], field: str = "VmRSS") -> float:
    """Resident memory summed over `pids` (VmHWM for the peak)."""
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith(field + ":"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024
