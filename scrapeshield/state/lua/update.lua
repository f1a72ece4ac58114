--[[ scrapeshield: count one request under every state key it touches, in one call.

The same arithmetic as scrapeshield/state/memory.py: two-bucket sliding windows,
exact distinct-record sets (capped at 2 x limit + 16), and the client's memory.

KEYS, in order: per entity, its window key, then one sorted-set key per distinct
counter; last, the client's memory key (optional).
ARGV[1]  now, in seconds (an exact decimal: it is also the sorted-set score)
ARGV[2]  the number of entities
then per entity: its counters, each as four little-endian doubles (window, distinct 0|1,
limit, cost), and the record this request reads ("" for none).

Returns one string: per entity its usages joined by spaces, entities joined by "|",
then "|" and the client's memory ("" when none is stored).

Keys: a window key holds 3 doubles per request counter (window start, current,
previous; struct-packed) and lives two of its longest windows; a record set is
scored by last read and lives one window after its last read. Every key of one
entity carries the entity's hash tag, so on a Cluster one call per entity (one
slot) runs it; on a single server one call covers all the entities of a request.
]]
local now = tonumber(ARGV[1])
local entities = tonumber(ARGV[2])
local k, a = 1, 3
local out = {}
for e = 1, entities do
  local spec, record = ARGV[a], ARGV[a + 1]
  a = a + 2
  local wkey = KEYS[k]
  k = k + 1
  local n = #spec / 32
  local f = {struct.unpack('<' .. string.rep('d', 4 * n), spec)}
  local windows, distinct, limits, costs = {}, {}, {}, {}
  local nw, longest = 0, 0
  for i = 1, n do
    windows[i], distinct[i], limits[i], costs[i] = f[4 * i - 3], f[4 * i - 2] == 1, f[4 * i - 1], f[4 * i]
    if not distinct[i] then
      nw = nw + 1
      if windows[i] > longest then longest = windows[i] end
    end
  end
  local v
  local layout = string.rep('d', 3 * nw)
  if nw > 0 then
    local raw = redis.call('GET', wkey)
    if raw and #raw == 24 * nw then
      v = {struct.unpack(layout, raw)}
    else
      v = {}
      for i = 1, 3 * nw do v[i] = 0 end
    end
  end
  local used = {}
  local b = 1
  for i = 1, n do
    local w = windows[i]
    if distinct[i] then
      local zkey = KEYS[k]
      k = k + 1
      local cap = 2 * limits[i] + 16
      local horizon = string.format('%.17g', now - w)
      local count
      if costs[i] ~= 0 and record ~= '' and redis.call('ZADD', zkey, ARGV[1], record) == 1 then
        -- a new record: the set grows, so drop what aged out and cap it
        redis.call('ZREMRANGEBYSCORE', zkey, '-inf', horizon)
        count = redis.call('ZCARD', zkey)
        if count > cap then
          redis.call('ZREMRANGEBYRANK', zkey, 0, count - cap - 1)
          count = cap
        end
      else
        -- no new record: count the live ones (aged ones wait for the next new record)
        count = math.min(cap, redis.call('ZCOUNT', zkey, '(' .. horizon, '+inf'))
      end
      if costs[i] ~= 0 and record ~= '' then redis.call('EXPIRE', zkey, math.ceil(w) + 1) end
      used[i] = count
    else
      local start = now - math.fmod(now, w)
      if start > v[b] then
        if start - v[b] <= w then v[b + 2] = v[b + 1] else v[b + 2] = 0 end
        v[b + 1] = 0
        v[b] = start
      end
      v[b + 1] = v[b + 1] + costs[i]
      used[i] = v[b + 2] * (1 - (now - start) / w) + v[b + 1]
      b = b + 3
    end
  end
  if nw > 0 then
    redis.call('SET', wkey, struct.pack(layout, unpack(v, 1, 3 * nw)), 'EX', math.ceil(2 * longest) + 1)
  end
  out[e] = table.concat(used, ' ')
end
local memory = false
if KEYS[k] then memory = redis.call('GET', KEYS[k]) end
out[entities + 1] = memory or ''
return table.concat(out, '|')
