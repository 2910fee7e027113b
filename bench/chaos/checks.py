"""The invariants, read from the soak's own Postgres and Redis once the system is at rest,
against what the clients saw (bench/chaos/client.py records). Each check says what held,
how often it did not, and a few examples to start a diagnosis from."""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
import redis

from bench.chaos import rules
from bench.chaos.client import Record
from bench.chaos.topology import Account

PICO = Decimal(10) ** 12
ZERO = Decimal(0)


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    examples: list[str] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)


@dataclass
class Facts:
    """The database and Redis as the checks read them."""

    rows: dict[str, dict[str, Any]]  # request log by request id
    usage: dict[str, list[Decimal]]  # usage ledger amounts by reference (request id)
    ledger_sum: dict[int, Decimal]  # every ledger row, by user
    balance: dict[int, Decimal]
    held: dict[int, Decimal]
    db_holds: int
    pending: int
    redis_holds: int
    hold_keys: int
    avail: dict[int, int | None]  # Redis' avail per user, pico-credits (None: not seeded)


def read_facts(db_url: str, r: redis.Redis, users: list[int]) -> Facts:
    with psycopg.connect(db_url) as conn:
        rows = {
            rid: {
                "user_id": uid,
                "status": status,
                "error_type": etype,
                "cost": cost,
                "completion_tokens": ctok,
                "stream": stream,
            }
            for rid, uid, status, etype, cost, ctok, stream in conn.execute(
                "SELECT request_id, user_id, status, error_type, cost, completion_tokens, stream "
                "FROM monitoring_requestlog"
            )
        }
        usage: dict[str, list[Decimal]] = defaultdict(list)
        ledger_sum: dict[int, Decimal] = defaultdict(Decimal)
        for uid, kind, amount, reference in conn.execute(
            "SELECT user_id, kind, amount, reference FROM billing_ledgerentry"
        ):
            ledger_sum[uid] += amount
            if kind == "usage":
                usage[reference].append(amount)
        balance, held = {}, {}
        for uid, bal, hld in conn.execute(
            "SELECT user_id, balance, held FROM billing_creditaccount"
        ):
            balance[uid], held[uid] = bal, hld
        db_holds = conn.execute("SELECT count(*) FROM billing_credithold").fetchone()
        pending = conn.execute("SELECT count(*) FROM billing_pendingavailchange").fetchone()
    avail = {}
    for uid in users:
        value = r.get(f"gwz:credit:avail:{uid}")
        avail[uid] = int(value) if value is not None else None
    return Facts(
        rows,
        usage,
        ledger_sum,
        balance,
        held,
        int(db_holds[0]) if db_holds else -1,
        int(pending[0]) if pending else -1,
        int(r.zcard("gwz:credit:holds")),
        sum(1 for _ in r.scan_iter("gwz:credit:hold:*", count=1000)),
        avail,
    )


def ledger_equals_log(facts: Facts, accounts: list[Account]) -> Check:
    bad: list[str] = []
    orphans = [ref for ref in facts.usage if ref not in facts.rows]
    for a in accounts:
        logged = [
            (rid, row["cost"]) for rid, row in facts.rows.items() if row["user_id"] == a.user_id
        ]
        log_sum = sum((cost for _, cost in logged), ZERO)
        usage_sum = ZERO
        for rid, cost in logged:
            charged = facts.usage.get(rid, [])
            usage_sum -= sum(charged, ZERO)
            if (cost > 0 and charged != [-cost]) or (cost == 0 and charged):
                bad.append(f"{a.name} {rid}: logged {cost}, ledger {charged}")
        if log_sum != usage_sum:
            bad.append(f"{a.name}: request log {log_sum} != usage ledger {usage_sum}")
        balance = facts.balance.get(a.user_id, ZERO)
        if balance != facts.ledger_sum.get(a.user_id, ZERO):
            bad.append(f"{a.name}: balance {balance} != its ledger {facts.ledger_sum[a.user_id]}")
    if orphans:
        bad.append(f"{len(orphans)} usage ledger rows without a request log row: {orphans[:3]}")
    return Check(
        "ledger == request log",
        not bad,
        f"for {len(accounts)} accounts" + (f", {len(bad)} differences" if bad else ""),
        bad[:8],
    )


def balances_not_negative(facts: Facts, accounts: list[Account]) -> Check:
    below = [
        f"{a.name}: {facts.balance[a.user_id]}"
        for a in accounts
        if facts.balance.get(a.user_id, ZERO) < 0
    ]
    return Check("no balance below zero", not below, f"{len(below)} below zero", below[:8])


def holds_released(facts: Facts, accounts: list[Account]) -> Check:
    bad = []
    if facts.redis_holds or facts.hold_keys:
        bad.append(f"redis: {facts.redis_holds} holds listed, {facts.hold_keys} hold keys")
    if facts.db_holds:
        bad.append(f"database: {facts.db_holds} CreditHold rows")
    if facts.pending:
        bad.append(f"database: {facts.pending} balance changes not mirrored into Redis")
    for a in accounts:
        if facts.held.get(a.user_id, ZERO):
            bad.append(f"{a.name}: CreditAccount.held {facts.held[a.user_id]}")
        avail = facts.avail.get(a.user_id)
        balance = facts.balance.get(a.user_id, ZERO)
        if avail is not None and Decimal(avail) != balance * PICO:
            bad.append(f"{a.name}: redis avail {Decimal(avail) / PICO} != balance {balance}")
    return Check(
        "every hold released, Redis == database",
        not bad,
        "0 holds, avail == balance" if not bad else f"{len(bad)} problems",
        bad[:8],
    )


def one_row_per_answer(facts: Facts, records: list[Record]) -> Check:
    """Every answer that named a request id has exactly one request-log row (the id is
    unique in the table, so one at most), unless the docs say it leaves none."""
    answered = [
        r
        for r in records
        if r.request_id and rules.row_expected(r.status, r.kind == "cold", r.error_message)
    ]
    lost = [r for r in answered if r.request_id not in facts.rows]
    by_what = Counter(_what(r) for r in lost)
    return Check(
        "one request-log row per answer",
        not lost,
        f"{len(answered)} answered, {len(lost)} without a row"
        + (f" ({', '.join(f'{n} {w}' for w, n in by_what.most_common())})" if lost else ""),
        [f"#{r.seq} {r.request_id} {_what(r)} t={r.started:.1f}s" for r in lost[:8]],
        {"lost": len(lost), "lost_by_kind": dict(by_what)},
    )


def _what(r: Record) -> str:
    shape = "stream" if r.stream else "json"
    if r.transport:
        return f"{shape} {r.status} cut ({r.transport})"
    return f"{shape} {r.status}{' complete' if r.complete else ''}{' left' if r.left else ''}"


def charge_equals_told(facts: Facts, records: list[Record]) -> Check:
    told = [r for r in records if r.told_cost is not None and r.request_id]
    bad = []
    for r in told:
        row = facts.rows.get(r.request_id or "")
        charged = -sum(facts.usage.get(r.request_id or "", []), ZERO)
        if row is None or row["cost"] != r.told_cost or charged != r.told_cost:
            logged = row["cost"] if row else "no row"
            bad.append(
                f"#{r.seq} {r.request_id}: told {r.told_cost}, logged {logged}, charged {charged}"
            )
    return Check(
        "charge == cost the client was told",
        not bad,
        f"{len(told)} told, {len(bad)} differ",
        bad[:8],
        {"mismatches": len(bad)},
    )


def left_streams_billed(facts: Facts, records: list[Record], rule: str) -> Check:
    left = [r for r in records if r.kind == "left" and r.left and r.request_id]
    bad, billed = [], []
    for r in left:
        row = facts.rows.get(r.request_id or "")
        if row is None:
            bad.append(f"#{r.seq} {r.request_id}: no row (left after {r.delivered})")
            continue
        billed.append(row["completion_tokens"])
        if not rules.left_stream_billed_ok(
            rule,
            row["status"],
            row["error_type"],
            row["completion_tokens"],
            r.delivered,
            r.planned,
            r.chunk_seconds,
        ):
            bad.append(
                f"#{r.seq} {r.request_id}: read {r.delivered} of {r.planned} chunks, "
                f"billed {row['completion_tokens']} tokens, status {row['status']}"
            )
    spread = f"billed {min(billed)}–{max(billed)} tokens" if billed else "none"
    return Check(
        f"client-left streams billed by the rule ({rule})",
        not bad,
        f"{len(left) - len(bad)} of {len(left)} as the rule says; {spread}",
        bad[:8],
        {"left": len(left), "off_rule": len(bad)},
    )


def left_json_logged(
    facts: Facts, records: list[Record], leavers: list[Account], rule: str
) -> Check:
    """Clients that gave up waiting for a whole answer never learn its request id: their
    rows are found by their own accounts (less those of requests answered before the client
    gave up), and each is held to the rule. (A row missing here may be a killed worker's
    request, which no client can name: reported only.)"""
    sent = [r for r in records if r.kind == "left-json" and r.left]
    ids = {a.user_id for a in leavers}
    answered = {r.request_id for r in records if r.kind == "left-json" and r.request_id}
    rows = [row for rid, row in facts.rows.items() if row["user_id"] in ids and rid not in answered]
    off = [
        row
        for row in rows
        if not rules.left_json_ok(rule, row["status"], row["error_type"], row["cost"])
    ]
    statuses = Counter(row["status"] for row in rows)
    charged = sum((row["cost"] for row in rows), ZERO)
    return Check(
        f"clients that left before a whole answer ({rule})",
        not off,
        f"{len(sent)} left, {len(rows)} rows, statuses {dict(statuses)}, charged {charged}",
        [f"status {row['status']}, cost {row['cost']}" for row in off[:8]],
    )


def no_500_and_documented_5xx(facts: Facts, records: list[Record]) -> Check:
    bad = []
    fives = [r for r in records if r.status is not None and r.status >= 500]
    for r in fives:
        if not r.request_id or not r.error_shaped:
            bad.append(
                f"#{r.seq} {r.status} {r.error_code}: no request id or not the route's shape"
            )
        elif not rules.error_documented(r.route, r.status, r.error_code):
            bad.append(f"#{r.seq} {r.request_id} {r.status} {r.error_code} on {r.route}")
    for r in records:
        if r.stream_error and not rules.error_documented(r.route, 502, r.stream_error):
            bad.append(f"#{r.seq} {r.request_id} stream error {r.stream_error}")
    client_500 = sum(1 for r in fives if r.status == 500)
    logged_500 = sum(1 for row in facts.rows.values() if row["status"] == 500)
    ok = not bad and not client_500 and not logged_500
    return Check(
        "no 500; every 5xx documented, with a request id",
        ok,
        f"{client_500} × 500 answered, {logged_500} × 500 logged, {len(fives)} × 5xx, "
        f"{len(bad)} undocumented",
        bad[:8],
        {"client_500": client_500, "logged_500": logged_500},
    )


def breaker_recovered(bursts: list[list[Record]]) -> Check | None:
    """Each burst opened chaos/burst's breaker and ended with its client served three
    times in a row (docs/routing.md: closed after its cooldown and two good probes)."""
    if not bursts:
        return None
    opened = [sum(1 for r in burst if r.error_code == "provider_circuit_open") for burst in bursts]
    closed = [[r.status for r in burst[-3:]] == [200, 200, 200] for burst in bursts]
    took = [f"{burst[-1].ended - burst[0].started:.0f} s" for burst in bursts if burst]
    return Check(
        "breaker opened by each burst closes again",
        all(opened) and all(closed),
        f"{len(bursts)} bursts: {sum(opened)} × provider_circuit_open, "
        f"served again after {', '.join(took)}"
        if all(closed)
        else f"closed: {closed}",
    )


def cold_keys(records: list[Record]) -> Check | None:
    """Keys no process had cached, first used while Postgres was down: issue 22 asks for a
    503 with Retry-After (never a 500, which the no-500 check counts). Reported."""
    cold = [r for r in records if r.kind == "cold"]
    if not cold:
        return None
    answers = Counter(f"{r.status} {r.error_code or ''}".strip() for r in cold)
    return Check(
        "keys first used during a database outage (info)",
        True,
        f"{len(cold)} asked: " + ", ".join(f"{n}× {a}" for a, n in answers.most_common()),
    )
