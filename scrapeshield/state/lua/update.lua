--[[ scrapeshield: count one request under every state key it touches, in one call.

The same arithmetic as scrapeshield/state/memory.py: two-bucket sliding windows,
exact distinct-record sets (capped at 2 x limit + 16), and the client's memory.

KEYS, in order: per entity, its window key, then its record sets' keys (set 1, 2, ...);
last, the client's memory key (optional).
ARGV[1]  now, in seconds (an exact decimal: it is also the sorted-set score)
ARGV[2]  the number of entities
then per entity: its description as little-endian doubles, and the record this request
reads ("" for none). The description is worked out once per counter shape by the caller
(layout.py), so that this script only follows it:
  header      counters, request counters, record sets, 1 if the window key is written
              (a request counter costs something here) else 0
  per counter request: window, 0, 0, cost; distinct: window, its record set's number,
              cap (2 x limit + 16), 1 if its window is the set's longest (else 0)
  per set     longest window, largest cap, 1 if this request's record goes in (its first
              counter costs)
  then, as zero-terminated decimal strings: the window key's TTL (two longest windows
  + 1 s), each set's TTL (one longest window + 1 s) (a number given to redis.call is
  formatted with "%.17g" on every call: a string is passed as it is)
Distinct counters of one entity that count the same requests share one set: it is
pruned by their longest window and capped at their largest cap, and each counts the
records read within its own window. (The caller shares a set only where its owner has
the longest window and the largest cap, so the shared set holds exactly what the
owner's own set held, and each count is the same: min(cap, records read in the
window) either way, the records a cap drops being the oldest.)

Returns one string: every counter's usage, entity after entity, as little-endian
doubles (exact, and cheaper than formatting numbers), then the client's memory as
stored ("" when none is).

Keys: a window key holds 3 doubles per request counter (window start, current,
previous; struct-packed) and lives two of its longest windows; a record set is
scored by last read and lives one window after its last read. Every key of one
entity carries the entity's hash tag, so on a Cluster one call per entity (one
slot) runs it; on a single server one call covers all the entities of a request.

Speed: this runs once per decision on the server, where its time is on the critical
path of a sync decision, so it does the least it can: no table per entity but its
description and its window, no per-set bookkeeping (the caller did it), and a window
key written only when a counter under it costs something (rolling a window forward
without a cost changes nothing a later call would not compute the same way, and a key
left to expire holds only counts that its two windows have aged out).
]]
local call, unpack_, pack, rep, format = redis.call, struct.unpack, struct.pack, string.rep, string.format
local min = math.min
local now = tonumber(ARGV[1])
local out, o = {}, 0
local live = {}  -- per record set (by its KEYS index): the records read in its longest window,
                 -- when this call added a new one (else unknown: counted with ZCOUNT)
local above, since = {}, {}  -- by window: the ZCOUNT and prune bounds (formatted once per call)
local k, a = 1, 3
for _ = 1, tonumber(ARGV[2]) do
  local spec, record = ARGV[a], ARGV[a + 1]
  a = a + 2
  local n, nw, ns = unpack_('<ddd', spec)
  local texts = 4 + 4 * n + 3 * ns  -- (f[texts + 1]: the window key's TTL, f[texts + 1 + s]: set s's)
  local f = {unpack_('<' .. rep('d', texts) .. rep('s', 1 + ns), spec)}
  local wkey = KEYS[k]
  local v, layout
  if nw > 0 then
    layout = rep('d', 3 * nw)
    local raw = call('GET', wkey)
    if raw and #raw == 24 * nw then
      v = {unpack_(layout, raw)}
    else
      v = {}
      for i = 1, 3 * nw do v[i] = 0 end
    end
  end
  local sets = 4 + 4 * n  -- (f[sets + 3 * s - 2]: set s's longest window)
  if record ~= '' then
    for s = 1, ns do
      local p = sets + 3 * s
      if f[p] ~= 0 then
        local zkey = KEYS[k + s]
        if call('ZADD', zkey, ARGV[1], record) == 1 then
          -- a new record: the set grows, so drop what aged out and cap it (a set of one,
          -- just made, has nothing to drop)
          local total = call('ZCARD', zkey)
          if total > 1 then
            local w = f[p - 2]
            local bound = since[w]
            if not bound then bound = format('%.17g', now - w); since[w] = bound end
            total = total - call('ZREMRANGEBYSCORE', zkey, '-inf', bound)
          end
          local cap = f[p - 1]
          if total > cap then
            call('ZREMRANGEBYRANK', zkey, 0, total - cap - 1)
            total = cap
          end
          live[k + s] = total
        end
        call('EXPIRE', zkey, f[texts + 1 + s])
      end
    end
  end
  local b = 1
  for p = 8, 4 + 4 * n, 4 do
    local w, s = f[p - 3], f[p - 2]
    o = o + 1
    if s ~= 0 then
      local total = live[k + s]
      if total and (f[p] ~= 0 or total == 1) then
        -- (a set of one holds only this request's record: it is live in every window)
        out[o] = min(f[p - 1], total)
      else
        -- no new record, or a shorter window than the set's: count the live ones
        local bound = above[w]
        if not bound then bound = format('(%.17g', now - w); above[w] = bound end
        out[o] = min(f[p - 1], call('ZCOUNT', KEYS[k + s], bound, '+inf'))
      end
    else
      local start = now - math.fmod(now, w)
      if start > v[b] then
        if start - v[b] <= w then v[b + 2] = v[b + 1] else v[b + 2] = 0 end
        v[b + 1] = 0
        v[b] = start
      end
      local current = v[b + 1] + f[p]
      v[b + 1] = current
      out[o] = v[b + 2] * (1 - (now - start) / w) + current
      b = b + 3
    end
  end
  if f[4] ~= 0 then
    call('SET', wkey, pack(layout, unpack(v, 1, 3 * nw)), 'EX', f[texts + 1])
  end
  k = k + 1 + ns
end
local memory = KEYS[k] and call('GET', KEYS[k])
return pack('<' .. rep('d', o), unpack(out, 1, o)) .. (memory or '')
