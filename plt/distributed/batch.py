"""A worker's steps on the crawl, batched: one script call per round trip.

Writes that need no answer (a lease settled, a partial item stored, an item
exported with its line) wait in the worker, in order, and go to Redis with its
next step that does need one (a request queued, requests leased), as one call
of the BATCH script: every step in it is atomic, as the single-step scripts of
plt.distributed.lua are, and they run in the order the worker took them.
Requests are leased several at a time, each with its partial item if it has
one and whether its item is exported. Any other command first sends what
waits (BatchingRedis), so a read always sees the worker's own writes.

A worker killed with writes still waiting loses only what it had not yet
settled: the leases it held expire and their requests are fetched again, so
nothing recorded is lost and nothing is recorded twice.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from redis import Redis
from redis.client import Pipeline

# How long a worker trusts "not exported" (another worker may export it since;
# the export step records each item once whatever this answer was).
NOT_EXPORTED_TTL = 60.0

# KEYS: seen, queue, data, seq, leases, owner, meta, attempts, exported,
#       pending, offsets, items, shown
# ARGV: steps, each as: name, number of arguments, arguments...
BATCH = """
local seen, queue, data, seq, leases, owner, meta, attempts = KEYS[1], KEYS[2], KEYS[3],
  KEYS[4], KEYS[5], KEYS[6], KEYS[7], KEYS[8]
local exported, pending, offsets, items, shown = KEYS[9], KEYS[10], KEYS[11], KEYS[12], KEYS[13]

local function settle(m)
  local n = redis.call('ZREM', leases, m) + redis.call('ZREM', queue, m)
  if n > 0 then redis.call('HDEL', data, m) end
  redis.call('HDEL', owner, m)
  return n
end

local function push(fp, priority, json, replaces, seed)
  local added = 1
  if fp ~= '' then added = redis.call('SADD', seen, fp) end
  if added == 1 then
    local id = string.format('%012d', redis.call('INCR', seq))
    redis.call('HSET', data, id, priority .. ' ' .. json)
    redis.call('ZADD', queue, -tonumber(priority), id)
    if replaces ~= '' then
      local a = redis.call('HGET', attempts, replaces)
      if a then
        redis.call('HSET', attempts, id, a)
        redis.call('HDEL', attempts, replaces)
      end
    end
  end
  if replaces ~= '' then
    if redis.call('ZREM', leases, replaces) + redis.call('ZREM', queue, replaces) > 0 then
      redis.call('HDEL', data, replaces)
    end
    redis.call('HDEL', owner, replaces)
  end
  if seed == '1' then redis.call('HSET', meta, 'seeded', '1') end
  return added
end

-- The item id a request names (cb_kwargs[id_field]), as a string, or false.
local function item_of(value, id_field)
  local space = string.find(value, ' ')
  if not space then return false end
  local ok, request = pcall(cjson.decode, string.sub(value, space + 1))
  if not ok or type(request) ~= 'table' or type(request.cb_kwargs) ~= 'table' then
    return false
  end
  local id = request.cb_kwargs[id_field]
  if type(id) ~= 'number' or id ~= math.floor(id) or math.abs(id) >= 2^53 then
    return false
  end
  return string.format('%d', id)
end

local function pop(worker, seconds, count, id_field)
  local t = redis.call('TIME')
  local expiry = tonumber(t[1]) + tonumber(t[2]) / 1000000 + tonumber(seconds)
  local rows = {}
  local popped = redis.call('ZPOPMIN', queue, tonumber(count))
  for k = 1, #popped, 2 do  -- member, score, member, score...
    local m = popped[k]
    redis.call('ZADD', leases, expiry, m)
    redis.call('HSET', owner, m, worker)
    local value = redis.call('HGET', data, m)
    local item = value and item_of(value, id_field)
    table.insert(rows, m)
    table.insert(rows, value or false)
    -- With the request: its partial item, and whether its item is exported.
    table.insert(rows, item and redis.call('HGET', pending, item) or false)
    table.insert(rows, item and redis.call('SISMEMBER', exported, item) or -1)
  end
  return rows
end

local function export(id, worker, offset, line)
  local added = redis.call('SADD', exported, id)
  if added == 1 then redis.call('XADD', items, '*', 'id', id, 'line', line) end
  redis.call('HDEL', pending, id)
  redis.call('HSET', offsets, worker, offset)
  return added
end

local function show(ids)
  if #ids == 0 then return {} end
  for _, id in ipairs(ids) do redis.call('HSETNX', shown, id, 0) end
  return redis.call('SMISMEMBER', exported, unpack(ids))
end

local out = {}
local i = 1
while i <= #ARGV do
  local name, n = ARGV[i], tonumber(ARGV[i + 1])
  local a = {}
  for j = 1, n do a[j] = ARGV[i + 1 + j] end
  local result = 0
  if name == 'push' then
    result = push(a[1], a[2], a[3], a[4], a[5])
  elseif name == 'settle' then
    for _, m in ipairs(a) do result = result + settle(m) end
  elseif name == 'pending' then
    redis.call('HSET', pending, a[1], a[2])
  elseif name == 'export' then
    result = export(a[1], a[2], a[3], a[4])
    for j = 5, n do settle(a[j]) end
  elseif name == 'pop' then
    result = pop(a[1], a[2], a[3], a[4])
  elseif name == 'show' then
    result = show(a)
  else
    return redis.error_reply('unknown step ' .. name)
  end
  table.insert(out, result)
  i = i + 2 + n
end
return out
"""


class Steps:
    """The steps that wait for the worker's next call, in order, bounded."""

    def __init__(self, limit: int = 256) -> None:
        self.limit = limit
        self.args: list[Any] = []
        self.count = 0

    def add(self, name: str, *args: Any) -> None:
        self.args += [name, len(args), *args]
        self.count += 1

    def take(self) -> list[Any]:
        args, self.args, self.count = self.args, [], 0
        return args

    @property
    def full(self) -> bool:
        return self.count >= self.limit


class BatchingRedis(Redis):
    """A client that sends the worker's waiting steps before any other command."""

    flush_hook: Callable[[], None] | None = None
    _flushing = False

    def execute_command(self, *args: Any, **options: Any) -> Any:
        self._flush()
        return super().execute_command(*args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        self._flush()
        return super().pipeline(transaction, shard_hint)

    def _flush(self) -> None:
        if self.flush_hook is None or self._flushing:
            return
        self._flushing = True
        try:
            self.flush_hook()
        finally:
            self._flushing = False


class Recent:
    """What the worker learnt lately, bounded: a value per key, for ``ttl`` seconds."""

    def __init__(self, size: int, ttl: float, clock: Callable[[], float]) -> None:
        self.size = size
        self.ttl = ttl
        self.clock = clock
        self._values: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any:
        """The value learnt for ``key``, or None when none is known (any more)."""
        entry = self._values.get(key)
        if entry is None:
            return None
        if entry[0] < self.clock():
            del self._values[key]
            return None
        return entry[1]

    def put(self, key: Any, value: Any, ttl: float | None = None) -> None:
        self._values[key] = (self.clock() + (self.ttl if ttl is None else ttl), value)
        self._values.move_to_end(key)
        while len(self._values) > self.size:
            self._values.popitem(last=False)

    def pop(self, key: Any) -> Any:
        entry = self._values.pop(key, None)
        return None if entry is None or entry[0] < self.clock() else entry[1]

    def __len__(self) -> int:
        return len(self._values)


def learn_exported(recent: Recent, item_id: int, exported: bool) -> None:
    """Remember whether an item is exported: for good if it is (an export is
    never undone), for NOT_EXPORTED_TTL if not (another worker may export it)."""
    recent.put(item_id, exported, None if exported else NOT_EXPORTED_TTL)
