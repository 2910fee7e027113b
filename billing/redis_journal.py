"""The request journal's Redis side (billing.lost_requests has the entries and the rules).

`ADMIT` writes what admission knew into the hold's journal hash (`a`), in its one round
trip. While a stream is relayed, `record_delivery` overwrites what had been delivered so
far (`d`) at most once every GATEWAYZ_JOURNAL_SECONDS, without waiting for the reply, and
pushes the hold's expiry on: a stream that runs past the hold's TTL is still alive, not
lost. Settlement deletes the journal with the hold. A hold that expires with its journal
belongs to a request whose process died: `LOST` settles it from the journal, like `SETTLE`
would have (the hold released, what was delivered charged, the outcome appended to the
usage stream), once per request id, whoever comes first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from billing.redis_credit import (
    HOLDS,
    PREFIX,
    USAGE_STREAM,
    hold_key,
    sync_script,
)
from billing.redis_scripts import RELEASE, SETTLED_TTL_SECONDS
from core.redis_sync import sync_client
from core.redis_wire import RedisWire

# KEYS: hold, holds   ARGV: delivery entry, new expiry, request id   -> 1 recorded, 0 settled
RECORD_DELIVERY = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1] .. ':journal', 'd', ARGV[1])
redis.call('ZADD', KEYS[2], 'XX', ARGV[2], ARGV[3])
return 1
"""

# Settles requests whose process died, each only if its hold is still there and due (a
# record made since the job read the journal moved the expiry on: it is alive after all).
# KEYS: holds, stream   ARGV: now, prefix, then per request: id, cost (pico), event
# -> number of requests settled
LOST = (
    RELEASE
    + """
local settled = 0
for i = 3, #ARGV, 3 do
  local id = ARGV[i]
  local due = redis.call('ZSCORE', KEYS[1], id)
  if due and tonumber(due) <= tonumber(ARGV[1]) then
    local hold = ARGV[2] .. 'hold:' .. id
    local held = redis.call('GET', hold)
    redis.call('ZREM', KEYS[1], id)
    redis.call('DEL', hold, hold .. ':journal')
    if held then
      release(held, ARGV[2])
      if redis.call('SET', ARGV[2] .. 'settled:' .. id, '1', 'NX', 'EX', {ttl}) then
        local avail = ARGV[2] .. 'avail:' .. string.match(held, '^(%d+) ')
        if ARGV[i + 1] ~= '0' and redis.call('EXISTS', avail) == 1 then
          redis.call('DECRBY', avail, ARGV[i + 1])
        end
        redis.call('XADD', KEYS[2], '*', 'e', ARGV[i + 2])
        settled = settled + 1
      end
    end
  end
end
return settled
""".replace("{ttl}", str(SETTLED_TTL_SECONDS))
)


async def record_delivery(
    wire: RedisWire, *, request_id: str, entry: bytes, expires_at: float
) -> None:
    keys = [hold_key(request_id), HOLDS]
    await wire.evalsha(RECORD_DELIVERY, keys, [entry, expires_at, request_id])


def journals_due(*, now: float, limit: int = 1000) -> list[tuple[str, dict[bytes, bytes]]]:
    """The requests whose hold is due, each with its journal (empty if it kept none)."""
    client = sync_client()
    due = cast(list[bytes], client.zrangebyscore(HOLDS, "-inf", now, start=0, num=limit))
    ids = [i.decode() for i in due]
    if not ids:
        return []
    pipe = client.pipeline(transaction=False)
    for request_id in ids:
        pipe.hgetall(hold_key(request_id) + ":journal")
    return list(zip(ids, pipe.execute(), strict=True))


def requests_lost_settle_redis(*, now: float, lost: Sequence[tuple[str, int, bytes]]) -> int:
    """Settles (request id, cost in pico-credits, usage event) for requests whose process
    died; returns how many were settled here (not by their process after all)."""
    args: list[str | bytes | int | float] = [now, PREFIX]
    for request_id, cost, event in lost:
        args += (request_id, cost, event)
    return int(sync_script(LOST)(keys=[HOLDS, USAGE_STREAM], args=args))
