"""The Redis side of the lease protocol: one Lua script per atomic step.

The steps a worker takes for each request (queue, lease, settle, export, and
the items a listing page showed) are the steps of plt.distributed.batch's
BATCH script, which runs several of them in one call; the scripts here are
the others: leases renewed, expired or given back, retries, status, finish.

Each script runs atomically in Redis, so at every instant a request of the
crawl is in exactly one place: the queue (a ZSET scored by -priority, members
are zero-padded ids, so equal priorities pop first in, first out), the lease
set (a ZSET scored by expiry, Redis server time), the failed set, or nowhere
(settled). The request itself is stored once, in a HASH, as
``"<priority> <json>"``, and deleted when it is settled.

Expiries use Redis' own clock (TIME), so the workers' clocks do not matter.
"""

from __future__ import annotations

_NOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
"""

_PRIORITY = "local function prio(v) return -tonumber(string.match(v, '^(%S+)')) end\n"

# Extends the leases this worker still owns; returns those it lost.
# KEYS: leases, owner, workers   ARGV: worker, lease seconds, leases...
RENEW = (
    _NOW
    + """
redis.call('HSET', KEYS[3], ARGV[1], now)
local lost = {}
for i = 3, #ARGV do
  local m = ARGV[i]
  if redis.call('HGET', KEYS[2], m) == ARGV[1] and redis.call('ZSCORE', KEYS[1], m) then
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), m)
  else
    table.insert(lost, m)
  end
end
return lost
"""
)

# Leases whose holder stopped renewing (killed, frozen) go back to the queue.
# KEYS: leases, queue, data, owner, meta   ARGV: max count
REQUEUE_EXPIRED = (
    _NOW
    + _PRIORITY
    + """
local ms = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[1]))
for _, m in ipairs(ms) do
  redis.call('ZREM', KEYS[1], m)
  redis.call('HDEL', KEYS[4], m)
  local v = redis.call('HGET', KEYS[3], m)
  if v then redis.call('ZADD', KEYS[2], prio(v), m) end
end
if #ms > 0 then redis.call('HINCRBY', KEYS[5], 'requeued_total', #ms) end
return #ms
"""
)

# A worker's own leases, back to the queue now (it stops) or into the failed
# set (it is idle, so nothing it holds is in flight: those requests failed).
# KEYS: leases, queue, data, owner, failed   ARGV: worker, 'queue' | 'failed', leases...
GIVE_BACK = (
    _PRIORITY
    + """
local n = 0
for i = 3, #ARGV do
  local m = ARGV[i]
  if redis.call('HGET', KEYS[4], m) == ARGV[1] and redis.call('ZREM', KEYS[1], m) == 1 then
    redis.call('HDEL', KEYS[4], m)
    local v = redis.call('HGET', KEYS[3], m)
    if v then
      if ARGV[2] == 'failed' then redis.call('SADD', KEYS[5], m)
      else redis.call('ZADD', KEYS[2], prio(v), m) end
      n = n + 1
    end
  end
end
return n
"""
)

# A new run retries what failed before, as the SQLite job state requeues the
# leases of a dead run.   KEYS: failed, queue, data
RETRY_FAILED = (
    _PRIORITY
    + """
local ms = redis.call('SMEMBERS', KEYS[1])
for _, m in ipairs(ms) do
  local v = redis.call('HGET', KEYS[3], m)
  if v then redis.call('ZADD', KEYS[2], prio(v), m) end
end
redis.call('DEL', KEYS[1])
return #ms
"""
)

# The crawl's counters. Whether it is finished is decided by the scheduler
# (plt.job.scheduler), the same way for every job store.
# KEYS: queue, leases, failed, pending, meta, exported
STATUS = """
local q = redis.call('ZCARD', KEYS[1])
local l = redis.call('ZCARD', KEYS[2])
local f = redis.call('SCARD', KEYS[3])
local p = redis.call('HLEN', KEYS[4])
local seeded = redis.call('HGET', KEYS[5], 'seeded') and 1 or 0
local finished = redis.call('HGET', KEYS[5], 'finished') and 1 or 0
return {q, l, f, p, seeded, finished, redis.call('SCARD', KEYS[6])}
"""

# Given up by the ledger: out of the leases, kept (with its data) in the
# given-up hash under its item id ('' for none), and its item marked given up.
# KEYS: leases, owner, gaveup, shown   ARGV: lease, item id or '', fate
GIVE_UP = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[3], ARGV[1], ARGV[2])
if ARGV[2] ~= '' then redis.call('HSET', KEYS[4], ARGV[2], ARGV[3]) end
return 1
"""

# PLT_JOB_RETRY_FAILED: what the ledger gave up is queued again, attempts reset.
# KEYS: gaveup, queue, data, attempts, shown   ARGV: fate given up, fate to do
RETRY_GIVEN_UP = (
    _PRIORITY
    + """
local all = redis.call('HGETALL', KEYS[1])
local n = 0
for i = 1, #all, 2 do
  local m, item = all[i], all[i + 1]
  local v = redis.call('HGET', KEYS[3], m)
  if v then
    redis.call('ZADD', KEYS[2], prio(v), m)
    n = n + 1
  end
  redis.call('HDEL', KEYS[4], m)
  if item ~= '' and redis.call('HGET', KEYS[5], item) == ARGV[1] then
    redis.call('HSET', KEYS[5], item, ARGV[2])
  end
end
redis.call('DEL', KEYS[1])
return n
"""
)

# A leased request kept for the next run is stored as another request (the
# URL first asked for, when a redirect hop failed), at its priority.
# KEYS: leases, data   ARGV: lease, json
REPLACE = """
if not redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 0 end
local v = redis.call('HGET', KEYS[2], ARGV[1])
if not v then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], string.match(v, '^(%S+)') .. ' ' .. ARGV[2])
return 1
"""

# A finished crawl's keys expire, once: a worker that sees it finished later
# does not push the expiry back.   KEYS: every key of the crawl   ARGV: seconds
EXPIRE_UNSET = """
local n = 0
for _, k in ipairs(KEYS) do
  if redis.call('TTL', k) == -1 then
    redis.call('EXPIRE', k, tonumber(ARGV[1]))
    n = n + 1
  end
end
return n
"""

# The crawl is marked finished only if, at this instant, nothing is queued,
# leased, failed for now or waiting for its last request: the worker's account
# of the crawl reads several keys one after another, and another worker may
# move a request between them meanwhile (a failed request queued again).
# KEYS: queue, leases, failed, pending, meta   ARGV: finished value (JSON)
FINISH = """
if redis.call('ZCARD', KEYS[1]) + redis.call('ZCARD', KEYS[2]) + redis.call('SCARD', KEYS[3])
   + redis.call('HLEN', KEYS[4]) > 0 then
  return 0
end
redis.call('HSET', KEYS[5], 'finished', ARGV[1])
return 1
"""
