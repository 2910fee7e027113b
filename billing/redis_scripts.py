"""The Lua scripts of credit in Redis (billing.redis_credit has the model): each runs
atomically, in one round trip. Amounts are pico-credit integers, changed only by Redis'
own 64-bit commands."""

SETTLED_TTL_SECONDS = 3600  # long enough for any retry of a settlement

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
RELEASE = """
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
    RELEASE
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
    RELEASE
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
    RELEASE
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
