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

from collections import defaultdict
from collections.abc import Sequence
from typing import cast

from billing.redis_credit import (
    credit_prefixes,
    hold_key,
    holds_key,
    journal_key,
    sync_script,
    usage_stream_key,
    user_prefix,
)
from billing.redis_scripts import RELEASE, SETTLED_TTL_SECONDS
from core.redis_sync import sync_client
from core.redis_wire import Wire

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
    wire: Wire, *, user_id: int, request_id: str, entry: bytes, expires_at: float
) -> None:
    prefix = user_prefix(user_id)
    keys = [hold_key(request_id, prefix), holds_key(prefix)]
    await wire.evalsha(RECORD_DELIVERY, keys, [entry, expires_at, request_id])


def journals_due(*, now: float, limit: int = 1000) -> list[tuple[str, str, dict[bytes, bytes]]]:
    """The requests whose hold is due, each as (its group's prefix, its id, its journal:
    empty if it kept none), group by group."""
    client = sync_client()
    found: list[tuple[str, str, dict[bytes, bytes]]] = []
    for prefix in credit_prefixes():
        due = cast(
            list[bytes], client.zrangebyscore(holds_key(prefix), "-inf", now, start=0, num=limit)
        )
        ids = [i.decode() for i in due]
        if not ids:
            continue
        pipe = client.pipeline(transaction=False)
        for request_id in ids:
            pipe.hgetall(journal_key(request_id, prefix))
        found += [(prefix, i, j) for i, j in zip(ids, pipe.execute(), strict=True)]
    return found


def requests_lost_settle_redis(*, now: float, lost: Sequence[tuple[str, str, int, bytes]]) -> int:
    """Settles (group prefix, request id, cost in pico-credits, usage event) for requests
    whose process died, one script per group; returns how many were settled here (not by
    their process after all)."""
    by_group: dict[str, list[str | bytes | int | float]] = defaultdict(list)
    for prefix, request_id, cost, event in lost:
        by_group[prefix] += (request_id, cost, event)
    settle = sync_script(LOST)
    return sum(
        int(settle(keys=[holds_key(p), usage_stream_key(p)], args=[now, p, *entries]))
        for p, entries in by_group.items()
    )
