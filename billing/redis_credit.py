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
from collections.abc import Sequence
from decimal import Decimal
from functools import cache
from typing import Any

from core.redis_sync import sync_client
from core.redis_wire import RedisWire

PICO = Decimal(10) ** 12
PREFIX = "gwz:credit:"
HOLDS = PREFIX + "holds"
USAGE_STREAM = PREFIX + "usage"
SETTLED_TTL_SECONDS = 3600  # long enough for any retry of a settlement


def to_pico(amount: Decimal) -> int:
    return int((amount * PICO).to_integral_value())


def from_pico(value: int | str | bytes) -> Decimal:
    return Decimal(int(value)) / PICO


def avail_key(user_id: int) -> str:
    return f"{PREFIX}avail:{user_id}"


def hold_key(request_id: str) -> str:
    return f"{PREFIX}hold:{request_id}"


def journal_key(request_id: str) -> str:
    """The request's journal (billing.lost_requests), a hash kept as long as its hold: `a`, what
    admission knew; `d`, what had been delivered at the last record."""
    return hold_key(request_id) + ":journal"


# KEYS: avail, hold, holds, then one counter per rate limit
# ARGV: amount, request_id, expires_at, user_id, then per limit: cap, amount, ttl, seed, then
#       the request's journal entry, if any (kept with the hold: see billing.lost_requests)
#       (ttl 0: a concurrency counter, of requests in flight; it is taken back when the
#       request's hold goes, by settlement or by expiry, so the hold lists it. ttl -1: a
#       lifetime counter, never expiring, which starts from `seed` if Redis has none)
# -> {1, remaining per limit...} admitted and counted; {0} refused for credit; {-1} avail not
#    seeded yet; {-2, i} refused by limit i. A refusal counts nothing anywhere. (Limits are
#    counts of requests and tokens, far below 2^53: Lua's doubles hold them exactly.)
ADMIT = """
local n = #KEYS - 3
local answer = {1}
for i = 1, n do
  local at = 4 + 4 * (i - 1)
  local used = redis.call('GET', KEYS[3 + i])
  if not used and ARGV[at + 4] ~= '0' then
    redis.call('SET', KEYS[3 + i], ARGV[at + 4])
    used = ARGV[at + 4]
  end
  used = tonumber(used or '0')
  local amount = tonumber(ARGV[at + 2])
  if used + amount > tonumber(ARGV[at + 1]) then return {-2, i} end
  answer[i + 1] = tonumber(ARGV[at + 1]) - used - amount
end
if redis.call('EXISTS', KEYS[1]) == 0 then return {-1} end
if redis.call('DECRBY', KEYS[1], ARGV[1]) < 0 then
  redis.call('INCRBY', KEYS[1], ARGV[1])
  return {0}
end
local held = ARGV[4] .. ' ' .. ARGV[1]
for i = 1, n do
  local key, at = KEYS[3 + i], 4 + 4 * (i - 1)
  if ARGV[at + 3] == '0' then
    redis.call('INCR', key)
    held = held .. ' ' .. key
  elseif redis.call('INCRBY', key, ARGV[at + 2]) == tonumber(ARGV[at + 2])
      and ARGV[at + 3] ~= '-1' then
    redis.call('EXPIRE', key, ARGV[at + 3])
  end
end
redis.call('SET', KEYS[2], held)
redis.call('ZADD', KEYS[3], ARGV[3], ARGV[2])
local journal = ARGV[5 + 4 * n]
if journal then redis.call('HSET', KEYS[2] .. ':journal', 'a', journal) end
return answer
"""

# Releases a hold's value ("user amount [concurrency counter...]"): the amount goes back to
# `avail` and the request leaves its concurrency counters. Shared by SETTLE and
# RELEASE_EXPIRED; whichever deletes the hold first releases it, so it happens once.
_RELEASE = """
local function release(held, prefix)
  local user, amount, counters = string.match(held, '^(%d+) (%d+)(.*)$')
  redis.call('INCRBY', prefix .. 'avail:' .. user, amount)
  for key in string.gmatch(counters, '%S+') do
    if redis.call('DECR', key) < 0 then redis.call('SET', key, 0) end
  end
end
"""

# A charge Redis can count nowhere: it keeps neither the request's hold nor the user's
# `avail` (its data was lost since the request was admitted). Charged in the stream, it would
# be missed by the next seed of `avail`, read from a balance the writer has not lowered
# yet: the account could spend it twice. The database settles it instead (its charge is
# mirrored into Redis like any other balance change, billing.services).
SETTLE_ON_DATABASE = 2

# KEYS: avail, hold, holds, stream, settled, then token counters to correct
# ARGV: cost, request_id, event, prefix, then the token counters' corrections
# -> 1 settled, 0 already settled (a retry), 2 to be settled on the database
SETTLE = (
    _RELEASE
    + """
if not redis.call('SET', KEYS[5], '1', 'NX', 'EX', {ttl}) then return 0 end
redis.call('DEL', KEYS[2] .. ':journal')
local held = redis.call('GET', KEYS[2])
if held then
  redis.call('DEL', KEYS[2])
  redis.call('ZREM', KEYS[3], ARGV[2])
  release(held, ARGV[4])
elseif ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 0 then
  redis.call('DEL', KEYS[5])
  return 2
end
if ARGV[1] ~= '0' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('DECRBY', KEYS[1], ARGV[1])
end
redis.call('XADD', KEYS[4], '*', 'e', ARGV[3])
for i = 6, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 1 and redis.call('INCRBY', KEYS[i], ARGV[i - 1]) < 0 then
    redis.call('SET', KEYS[i], 0, 'KEEPTTL')
  end
end
return 1
""".replace("{ttl}", str(SETTLED_TTL_SECONDS))
)

# Holds whose request kept a journal are settled from it first (billing.lost_requests); this
# releases the rest, and any whose journal could not be read.
# KEYS: holds   ARGV: now, prefix   -> number of holds released
RELEASE_EXPIRED = (
    _RELEASE
    + """
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 1000)
local released = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[1], id)
  local held = redis.call('GET', ARGV[2] .. 'hold:' .. id)
  if held then
    redis.call('DEL', ARGV[2] .. 'hold:' .. id, ARGV[2] .. 'hold:' .. id .. ':journal')
    release(held, ARGV[2])
    released = released + 1
  end
end
return released
"""
)

# Balance changes made while Redis was unreachable (billing.models.PendingAvailChange), for
# one user, each applied once (a `mirrored:` marker per change survives a crash between
# this script and the deletion of the rows). A usage charge names its request: if Redis
# settled that request itself after all (a settlement whose reply was lost), it is charged
# here already and only marked; else its hold, if Redis still keeps one, is released now
# rather than at expiry, and a late settlement of it will find it settled.
# KEYS: avail, holds   ARGV: prefix, then per change: id, amount, request id or ''
# -> number of changes applied
APPLY_PENDING = (
    _RELEASE
    + """
local applied = 0
for i = 2, #ARGV, 3 do
  local amount, request_id = ARGV[i + 1], ARGV[i + 2]
  if redis.call('SET', ARGV[1] .. 'mirrored:' .. ARGV[i], '1', 'NX', 'EX', 86400) then
    local charged = false
    if request_id ~= '' then
      if redis.call('SET', ARGV[1] .. 'settled:' .. request_id, '1', 'NX', 'EX', {ttl}) then
        local hold = ARGV[1] .. 'hold:' .. request_id
        local held = redis.call('GET', hold)
        if held then
          redis.call('DEL', hold, hold .. ':journal')
          redis.call('ZREM', KEYS[2], request_id)
          release(held, ARGV[1])
        end
      else
        charged = true
      end
    end
    if not charged and redis.call('EXISTS', KEYS[1]) == 1 then
      redis.call('INCRBY', KEYS[1], amount)
    end
    applied = applied + 1
  end
end
return applied
""".replace("{ttl}", str(SETTLED_TTL_SECONDS))
)

# Replies of a Redis that is there but cannot serve: loading its data after a restart, a
# replica after a failover, a script running too long, no master.
UNAVAILABLE_REPLIES = ("LOADING", "READONLY", "BUSY", "MASTERDOWN", "TRYAGAIN")


@cache
def _sync_script(source: str) -> Any:
    return sync_client().register_script(source)


def credit_avail_seed(*, user_id: int, balance: Decimal) -> bool:
    """Creates the user's `avail` from the balance (call under the account row's lock);
    False if it existed already."""
    return bool(sync_client().set(avail_key(user_id), to_pico(balance), nx=True))


def credit_pending_mirror(*, user_id: int, changes: Sequence[tuple[int, Decimal, str]]) -> int:
    """Applies (id, amount, request id or '') changes to the user's `avail` (call under the
    account row's lock); see APPLY_PENDING."""
    args: list[str | int] = [PREFIX]
    for change_id, amount, request_id in changes:
        args += (change_id, to_pico(amount), request_id)
    return int(_sync_script(APPLY_PENDING)(keys=[avail_key(user_id), HOLDS], args=args))


def credit_holds_release_expired_redis(*, now: float) -> int:
    return int(_sync_script(RELEASE_EXPIRED)(keys=[HOLDS], args=[now, PREFIX]))


class RedisCredit:
    """The hot path's async side: admit and settle, one script call each, on the process's
    multiplexed connection (core.redis_wire)."""

    def __init__(self, url: str, *, timeout: float = 5.0) -> None:
        self.wire = RedisWire(url, timeout=timeout)

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
        result = await self.wire.evalsha(
            ADMIT, [avail_key(user_id), hold_key(request_id), HOLDS, *counters], args
        )
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
    keys = [
        avail_key(user_id),
        hold_key(request_id),
        HOLDS,
        USAGE_STREAM,
        f"{PREFIX}settled:{request_id}",
        *(counter for counter, _ in token_corrections),
    ]
    args: list[str | bytes | int] = [
        to_pico(cost),
        request_id,
        event,
        PREFIX,
        *(delta for _, delta in token_corrections),
    ]
    return keys, args
