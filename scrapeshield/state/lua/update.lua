--[[ scrapeshield: count one request under every state key it touches, in one call.

The same arithmetic as scrapeshield/state/memory.py: two-bucket sliding windows,
exact distinct-record sets (capped at 2 x limit + 16), and the client's memory.

KEYS, in order: per entity, its window key, then one sorted-set key per record set
(in the order of the counters that first use them); last, the client's memory key
(optional).
ARGV[1]  now, in seconds (an exact decimal: it is also the sorted-set score)
ARGV[2]  the number of entities
then per entity: its counters, each as four little-endian doubles (window, set, limit,
cost), and the record this request reads ("" for none). set: 0 for a request counter;
for a distinct counter, the number of the record set it counts in (1 + the index of the
counter that owns it). Distinct counters of one entity that count the same requests
share one set: it is pruned by their longest window and capped at their largest cap, and
each counts the records read within its own window. (The caller shares a set only where
its owner has the longest window and the largest cap, so the shared set holds exactly what
the owner's own set held, and each count is the same: min(cap, records read in the
window) either way, the records a cap drops being the oldest.)

Returns one string: every counter's usage, entity after entity, as little-endian
doubles (exact, and cheaper than formatting numbers), then the client's memory as
stored ("" when none is).

Keys: a window key holds 3 doubles per request counter (window start, current,
previous; struct-packed) and lives two of its longest windows; a record set is
scored by last read and lives one window after its last read. Every key of one
entity carries the entity's hash tag, so on a Cluster one call per entity (one
slot) runs it; on a single server one call covers all the entities of a request.

Speed: this runs once per decision on the server, so it does the least it can: no
tables per counter, and a window key is written only when a counter under it costs
something (rolling a window forward without a cost changes nothing a later call
would not compute the same way, and a key left to expire holds only counts that
its two windows have aged out).
]]
-- The struct formats of 1-4 counters, as constants (made once, when the script loads,
-- where building them per entity cost a string.rep and a concatenation each time).
local SPECS = {'<dddd', '<dddddddd', '<dddddddddddd', '<dddddddddddddddd'}
local WINDOWS = {'ddd', 'dddddd', 'ddddddddd', 'dddddddddddd'}
local now = tonumber(ARGV[1])
local out, o = {}, 0
local k, a = 1, 3
for _ = 1, tonumber(ARGV[2]) do
  local spec, record = ARGV[a], ARGV[a + 1]
  a = a + 2
  local wkey = KEYS[k]
  k = k + 1
  local n = #spec / 32
  local f = {struct.unpack(SPECS[n] or ('<' .. string.rep('d', 4 * n)), spec)}
  local nw, longest, costly = 0, 0, false
  local sw, scap  -- per record set: its longest window and largest cap (when there are sets)
  for i = 4, 4 * n, 4 do
    local d = f[i - 2]
    if d == 0 then
      nw = nw + 1
      if f[i - 3] > longest then longest = f[i - 3] end
      if f[i] ~= 0 then costly = true end
    else
      if not sw then sw, scap = {}, {} end
      local cap = 2 * f[i - 1] + 16
      if not sw[d] or f[i - 3] > sw[d] then sw[d] = f[i - 3] end
      if not scap[d] or cap > scap[d] then scap[d] = cap end
    end
  end
  local v, layout
  if nw > 0 then
    layout = WINDOWS[nw] or string.rep('d', 3 * nw)
    local raw = redis.call('GET', wkey)
    if raw and #raw == 24 * nw then
      v = {struct.unpack(layout, raw)}
    else
      v = {}
      for i = 1, 3 * nw do v[i] = 0 end
    end
  end
  local b = 1
  local zkeys, live  -- per record set: its key; the records read in its longest window, if known
  for i = 4, 4 * n, 4 do
    local w, cost = f[i - 3], f[i]
    local d = f[i - 2]
    o = o + 1
    if d ~= 0 then
      local cap = 2 * f[i - 1] + 16
      if not zkeys then zkeys, live = {}, {} end
      local zkey = zkeys[d]
      if not zkey then
        -- the set's first counter: the record goes in (once for all its counters)
        zkey = KEYS[k]
        k = k + 1
        zkeys[d] = zkey
        if cost ~= 0 and record ~= '' then
          local sw_, scap_ = sw[d], scap[d]
          if redis.call('ZADD', zkey, ARGV[1], record) == 1 then
            -- a new record: the set grows, so drop what aged out and cap it (a set of one,
            -- just made, has nothing to drop)
            local total = redis.call('ZCARD', zkey)
            if total > 1 then
              total = total - redis.call('ZREMRANGEBYSCORE', zkey, '-inf', string.format('%.17g', now - sw_))
            end
            if total > scap_ then
              redis.call('ZREMRANGEBYRANK', zkey, 0, total - scap_ - 1)
              total = scap_
            end
            live[d] = total
          end
          redis.call('EXPIRE', zkey, math.ceil(sw_) + 1)
        end
      end
      local total = live[d]
      if total and (w == sw[d] or total == 1) then
        -- (a set of one holds only this request's record: it is live in every window)
        out[o] = math.min(cap, total)
      else
        -- no new record, or a shorter window than the set's: count the live ones (the
        -- window's start is formatted only for the call that needs it)
        out[o] = math.min(cap, redis.call('ZCOUNT', zkey, string.format('(%.17g', now - w), '+inf'))
      end
    else
      local start = now - math.fmod(now, w)
      if start > v[b] then
        if start - v[b] <= w then v[b + 2] = v[b + 1] else v[b + 2] = 0 end
        v[b + 1] = 0
        v[b] = start
      end
      local current = v[b + 1] + cost
      v[b + 1] = current
      out[o] = v[b + 2] * (1 - (now - start) / w) + current
      b = b + 3
    end
  end
  if costly then
    redis.call('SET', wkey, struct.pack(layout, unpack(v, 1, 3 * nw)), 'EX', math.ceil(2 * longest) + 1)
  end
end
local memory = KEYS[k] and redis.call('GET', KEYS[k])
return struct.pack('<' .. string.rep('d', o), unpack(out, 1, o)) .. (memory or '')
