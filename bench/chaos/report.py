"""What the soak prints: the fault timeline with what each 10 s window cost the clients, the
checks, and one summary line."""

from __future__ import annotations

import math
from collections import Counter

from bench.chaos.checks import Check
from bench.chaos.client import Record
from bench.chaos.faults import FaultEvent

WINDOW = 10.0
# Traffic whose errors the load asked for (upstream faults, the breaker burst): the
# "5xx unfaulted" column leaves it out, to show what the process faults cost.
FAULTED = ("fault", "burst")


def timeline(records: list[Record], events: list[FaultEvent], lost: set[str]) -> str:
    """Per 10 s window (by when each request started): the faults in it, the requests, and
    how they ended (no answer: nothing reached the client; cut: an answer that broke off).
    `lost`: request ids that were answered but left no request-log row."""
    end = max([r.started for r in records] + [e.ended for e in events] + [0.0])
    lines = [
        "| window | faults | requests | 2xx | 4xx | 5xx | 5xx unfaulted | 500 | no answer "
        "| cut | left | lost rows | top errors |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for w in range(math.ceil((end + 0.001) / WINDOW)):
        lo, hi = w * WINDOW, (w + 1) * WINDOW
        inside = [r for r in records if lo <= r.started < hi]
        faults = [
            f"{e.kind}@{e.started:.0f}s"
            for e in events
            if e.started < hi and max(e.ended, e.started) >= lo
        ]
        statuses = Counter((r.status or 0) // 100 for r in inside)
        errors = Counter(
            f"{r.status} {r.error_code}"
            if r.status and r.status >= 400
            else f"stream {r.stream_error}"
            if r.stream_error
            else f"{r.transport}"
            for r in inside
            if (r.status or 0) >= 400 or r.stream_error or r.transport
        )
        lines.append(
            f"| {lo:4.0f}–{hi:.0f}s | {', '.join(faults) or ''} | {len(inside)} | {statuses[2]} "
            f"| {statuses[4]} | {statuses[5]} "
            f"| {sum(1 for r in inside if (r.status or 0) >= 500 and r.kind not in FAULTED)} "
            f"| {sum(1 for r in inside if r.status == 500)} "
            f"| {sum(1 for r in inside if r.status is None and not r.left)} "
            f"| {sum(1 for r in inside if r.status is not None and r.transport)} "
            f"| {sum(1 for r in inside if r.left)} "
            f"| {sum(1 for r in inside if r.request_id in lost)} "
            f"| {'; '.join(f'{n}× {e}' for e, n in errors.most_common(3))} |"
        )
    return "\n".join(lines)


def fault_lines(events: list[FaultEvent]) -> str:
    return "\n".join(
        f"  {e.started:6.1f}–{e.ended:6.1f}s  {e.kind:20} {e.detail}"
        + (f"  FAILED: {e.failed}" if e.failed else "")
        for e in events
    )


def check_lines(checks: list[Check]) -> str:
    out = []
    for c in checks:
        out.append(f"  {'ok  ' if c.ok else 'FAIL'} {c.name}: {c.summary}")
        out += [f"         {x}" for x in c.examples]
    return "\n".join(out)


def summary(records: list[Record], checks: list[Check], accounts: int, seconds: float) -> str:
    by_name = {c.name.split(" (")[0]: c for c in checks}
    fives = next(c for c in checks if c.name.startswith("no 500"))
    rows = next(c for c in checks if c.name.startswith("one request-log row"))
    told = next(c for c in checks if c.name.startswith("charge =="))
    left = next(c for c in checks if c.name.startswith("client-left"))
    ledger = by_name["ledger == request log"]
    ok = all(c.ok for c in checks)
    return (
        f"chaos: {len(records)} requests in {seconds / 60:.1f} min, "
        f"{fives.figures['client_500']} × 500 answered ({fives.figures['logged_500']} logged), "
        f"{rows.figures['lost']} lost rows, {told.figures['mismatches']} cost mismatches, "
        f"ledger {'==' if ledger.ok else '!='} log for {accounts} accounts, "
        f"{left.figures['off_rule']} of {left.figures['left']} left streams off the rule, "
        f"{sum(1 for c in checks if not c.ok)} failed checks: {'PASS' if ok else 'FAIL'}"
    )
