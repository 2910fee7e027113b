"""The documented rules the soak holds the gateway to, in one place, so that a rule that
changes in the docs changes here in one line.

- Client gone (docs/request-path.md, "Other decisions"). Since issue 19 item 2
  (`LEFT_RULE = "until_left"`): mid-stream, the upstream is closed at once and the request
  billed by the rule for cut streams ("at least one output token per content event
  relayed", the provider's usage as far as it reported it) and logged 499
  `client_closed`; before an answer has come, nothing is charged, logged 499, or, if its
  process was killed before it noticed, 502 `worker_lost` by the crash journal
  (docs/request-path.md, "A crash leaves a record"), charged nothing. Before it
  (`"to_end"`): "we keep reading the upstream to its end, so the request is billed for
  exactly what the provider produced", a whole answer logged 200.
- Which answers leave no request-log row: unauthenticated ones (docs/request-path.md,
  "Request log rows"); a key that cannot be checked because the database is down and no
  process has it cached is unauthenticated too (issue 22: such a request gets a 503).
  A 500 is counted by the no-500 check only (it may come before authentication).
- Which 5xx are documented: a code (OpenAI routes) that docs/*.md name in backticks, or
  an Anthropic error type (the Anthropic route's errors carry no code), and a request id.
- A balance may go below zero only while Redis is unreachable (docs/limits.md, "What is
  looser meanwhile"); the soak's faults make Redis unreachable for a moment only, and its
  low-credit accounts hold far less than one such moment's traffic could overdraw, so any
  negative balance is reported, with the fault windows beside it.
"""

from __future__ import annotations

import re
from decimal import Decimal
from functools import cache
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"

# "until_left" (docs/request-path.md since issue 19, item 2) or "to_end" (before it).
LEFT_RULE = "until_left"
CLIENT_CLOSED = 499
# Under "until_left": what the provider may still produce between the client's leaving and
# the gateway closing the upstream: this many seconds of the stream's pace, plus two chunks.
LEFT_GRACE_SECONDS = 1.0
# How often a stream records what it delivered in the crash journal (GATEWAYZ_JOURNAL_SECONDS).
JOURNAL_SECONDS = 1.0

# Anthropic's error types (its API reference, "Errors"), the Anthropic route's error shape.
ANTHROPIC_ERROR_TYPES = frozenset(
    {
        "invalid_request_error",
        "authentication_error",
        "billing_error",
        "permission_error",
        "not_found_error",
        "request_too_large",
        "rate_limit_error",
        "api_error",
        "overloaded_error",
        "timeout_error",
    }
)


def left_stream_billed_ok(
    rule: str,
    status: int,
    error_type: str,
    billed_tokens: int,
    delivered: int,
    planned: int,
    chunk_seconds: float,
) -> bool:
    """Whether a stream the client left after reading `delivered` content events (of
    `planned`, one output token each, `chunk_seconds` apart) was logged and billed
    `billed_tokens` output tokens as the rule says. If its process was killed first, the
    crash journal's rule applies instead: billed what its last record (at most
    JOURNAL_SECONDS old) says was delivered."""
    grace = int(LEFT_GRACE_SECONDS / chunk_seconds) + 2
    if (status, error_type) == WORKER_LOST:
        behind = int(JOURNAL_SECONDS / chunk_seconds) + 2
        return max(0, delivered - behind) <= billed_tokens <= min(planned, delivered + grace)
    if rule == "to_end":
        return status == 200 and billed_tokens == planned
    within = delivered <= billed_tokens <= min(planned, delivered + grace)
    return status == CLIENT_CLOSED and within


WORKER_LOST = (502, "worker_lost")  # a request whose process died (billing.lost_requests)


def left_json_ok(rule: str, status: int, error_type: str, cost: Decimal) -> bool:
    """A client that left before its whole answer came: under "until_left" nothing is
    charged and the request is logged 499 (or `worker_lost`, if its process was killed
    first: nothing was delivered, so the journal charges nothing); under "to_end", a whole
    answer is billed."""
    if rule == "to_end":
        return status == 200
    return (status == CLIENT_CLOSED or (status, error_type) == WORKER_LOST) and cost == 0


# The 503 `database_unavailable` of a key that could not be checked says so (gateway.pipeline.auth).
KEY_UNCHECKED = "to check this API key"


def row_expected(status: int | None, cold_key: bool, message: str | None = None) -> bool:
    """Whether an answer must have left a request-log row. A 500 is a failure of its own
    (the no-500 check): it is not counted again as a lost row. A key the gateway could not
    check (the database down, no copy of it here or in the shared key cache: a cold key, or
    a warm one asked of a worker started during the outage after Redis lost its copies) is
    unauthenticated: no row can name its owner."""
    if status in (401, 500):
        return False
    return not (status == 503 and (cold_key or KEY_UNCHECKED in (message or "")))


@cache
def documented_codes() -> frozenset[str]:
    text = "\n".join(p.read_text() for p in DOCS.glob("*.md"))
    return frozenset(re.findall(r"`([a-z][a-z0-9_]+)`", text))


def error_documented(route: str, status: int, code: str | None) -> bool:
    """A 5xx the client may get: never a 500, and in the route's documented vocabulary."""
    if status == 500 or not code:
        return False
    if route == "messages":
        return code in ANTHROPIC_ERROR_TYPES
    return code in documented_codes()
