"""Credit admission and settlement in Redis: one round trip each on the hot path.

Redis keeps, per user, `avail`: what may still be reserved, in pico-credits (credits × 10^12,
so every 12-place decimal amount is an exact integer). Holds are keys of their own, listed
in a sorted set by expiry. Settlement releases the hold, takes the actual cost from `avail`
and appends the outcome to a stream, all in one script; the stream is written to Postgres
(ledger, balance, request log) in batches by `billing.usage_writer`, idempotently, and
acknowledged only after the commit.

Counters change only through Redis' own 64-bit integer commands (DECRBY/INCRBY): the scripts
never do arithmetic in Lua, whose numbers are doubles. The sign of a result is all a script
reads, and that survives the conversion exactly.

`avail` is created from the Postgres balance the first time a user is admitted
(`credit_avail_seed`), and every later change of the Postgres balance that did not come
through the stream (a grant, a purchase) is added to it in the same transaction, under the
account row's lock, so the two can never miss or double an amount (`credit_pending_mirror`,
through a record of the change that makes it safe to apply again: billing.services).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from billing.redis_scripts import ADMIT, APPLY_PENDING, RELEASE_EXPIRED, SETTLE
from core.redis_cluster import hot_wire
from core.redis_groups import group_tag, group_tags
from core.redis_sync import replicated, sync_client

PICO = Decimal(10) ** 12
PREFIX = "gwz:credit:"
# With one key group (core.redis_groups), the names of the one holds index and stream.
HOLDS = PREFIX + "holds"
USAGE_STREAM = PREFIX + "usage"


def to_pico(amount: Decimal) -> int:
    return int((amount * PICO).to_integral_value())


def from_pico(value: int | str | bytes) -> Decimal:
    return Decimal(int(value)) / PICO


def user_prefix(user_id: int) -> str:
    """The prefix of the customer's credit keys: its group's (core.redis_groups)."""
    return PREFIX + group_tag(user_id)


def credit_prefixes() -> list[str]:
    """Every group's prefix: what the jobs that go over all holds or streams walk."""
    return [PREFIX + tag for tag in group_tags()]


def avail_key(user_id: int) -> str:
    return f"{user_prefix(user_id)}avail:{user_id}"


def hold_key(request_id: str, prefix: str = PREFIX) -> str:
    return f"{prefix}hold:{request_id}"


def journal_key(request_id: str, prefix: str = PREFIX) -> str:
    """The request's journal (billing.lost_requests), a hash kept as long as its hold: `a`, what
    admission knew; `d`, what had been delivered at the last record."""
    return hold_key(request_id, prefix) + ":journal"


def settled_key(request_id: str, prefix: str = PREFIX) -> str:
    return f"{prefix}settled:{request_id}"


def holds_key(prefix: str = PREFIX) -> str:
    """A group's holds, by expiry."""
    return prefix + "holds"


def usage_stream_key(prefix: str = PREFIX) -> str:
    """A group's usage stream, which the usage consumer drains."""
    return prefix + "usage"


# Replies of a Redis that is there but cannot serve: loading its data after a restart, a
# replica after a failover, a script running too long, no master, a master without the
# replicas in sync that its min-replicas-to-write asks for.
UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "BUSY", "MASTERDOWN", "TRYAGAIN", "NOREPLICAS")


@cache
def _registered(source: str) -> Any:
    return sync_client().register_script(source)


def sync_script(source: str) -> Callable[..., Any]:
    """A money script for sync code: run, then held by the replicas (core.redis_sync)."""
    script = _registered(source)

    def run(**kwargs: Any) -> Any:
        answer = script(**kwargs)
        replicated(sync_client())
        return answer

    return run


def credit_avail_seed(*, user_id: int, balance: Decimal) -> bool:
    """Creates the user's `avail` from the balance (call under the account row's lock);
    False if it existed already."""
    created = bool(sync_client().set(avail_key(user_id), to_pico(balance), nx=True))
    replicated(sync_client())
    return created


def credit_pending_mirror(*, user_id: int, changes: Sequence[tuple[int, Decimal, str]]) -> int:
    """Applies (id, amount, request id or '') changes to the user's `avail` (call under the
    account row's lock); see APPLY_PENDING."""
    prefix = user_prefix(user_id)
    args: list[str | int] = [prefix]
    for change_id, amount, request_id in changes:
        args += (change_id, to_pico(amount), request_id)
    keys = [avail_key(user_id), holds_key(prefix)]
    return int(sync_script(APPLY_PENDING)(keys=keys, args=args))


def credit_holds_release_expired_redis(*, now: float) -> int:
    release = sync_script(RELEASE_EXPIRED)
    return sum(
        int(release(keys=[holds_key(prefix)], args=[now, prefix])) for prefix in credit_prefixes()
    )


class RedisCredit:
    """The hot path's async side: admit and settle, one script call each, on the process's
    multiplexed connection (core.redis_wire)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.wire = hot_wire(url, timeout=timeout)

    async def ping(self) -> None:
        await self.wire.call("PING")

    async def admit(
        self,
        *,
        user_id: int,
        request_id: str,
        amount: Decimal,
        expires_at: float,
        counters: Sequence[str] = (),
        limits: Sequence[int] = (),
        journal: bytes = b"",
    ) -> list[int]:
        """`counters` and `limits`: the rate limits to check and count with the hold, as
        gateway.guards.limits.redis_args lays them out; `journal`, the request's journal entry, kept
        with the hold. Returns the script's answer (see ADMIT)."""
        args: list[str | bytes | int | float] = [
            to_pico(amount),
            request_id,
            expires_at,
            user_id,
            *limits,
        ]
        if journal:
            args.append(journal)
        prefix = user_prefix(user_id)
        keys = [avail_key(user_id), hold_key(request_id, prefix), holds_key(prefix), *counters]
        result = await self.wire.evalsha(ADMIT, keys, args)
        return [int(x) for x in result]

    async def settle(
        self,
        *,
        user_id: int,
        request_id: str,
        cost: Decimal,
        event: bytes,
        token_corrections: Sequence[tuple[str, int]] = (),
    ) -> int:
        """SETTLE's answer: 1 settled, 0 settled before, SETTLE_ON_DATABASE."""
        keys, args = _settle_args(user_id, request_id, cost, event, token_corrections)
        return int(await self.wire.evalsha(SETTLE, keys, args))

    def settle_now(
        self,
        *,
        user_id: int,
        request_id: str,
        cost: Decimal,
        event: bytes,
        token_corrections: Sequence[tuple[str, int]] = (),
    ) -> asyncio.Future[Any] | None:
        """`settle`, its command written to Redis before this returns (RedisWire.evalsha_now):
        a future of the script's raw answer, or None if not connected."""
        keys, args = _settle_args(user_id, request_id, cost, event, token_corrections)
        return self.wire.evalsha_now(SETTLE, keys, args)

    async def close(self) -> None:
        await self.wire.close()


def _settle_args(
    user_id: int,
    request_id: str,
    cost: Decimal,
    event: bytes,
    token_corrections: Sequence[tuple[str, int]],
) -> tuple[list[str], list[str | bytes | int]]:
    prefix = user_prefix(user_id)
    keys = [
        avail_key(user_id),
        hold_key(request_id, prefix),
        holds_key(prefix),
        usage_stream_key(prefix),
        settled_key(request_id, prefix),
        *(counter for counter, _ in token_corrections),
    ]
    args: list[str | bytes | int] = [
        to_pico(cost),
        request_id,
        event,
        prefix,
        *(delta for _, delta in token_corrections),
    ]
    return keys, args
