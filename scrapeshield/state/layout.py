"""What the Redis and Cluster stores send and read: key names, script arguments, replies.

The Lua script (``lua/update.lua``) and the RESP framing of the commands sent around
redis-py's command layer; the client's memory as stored (packed doubles). Shared by
``redis.py`` (one server) and ``cluster.py`` (Redis Cluster).
"""

from __future__ import annotations

import hashlib
import math
import struct
from collections.abc import Sequence
from importlib.resources import files

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate

SCRIPT = (files("scrapeshield.state") / "lua" / "update.lua").read_bytes()
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()
_MEMORY_SIZE = len(ClientMemory().values)
_DOUBLES = struct.Struct(f"<{_MEMORY_SIZE}d")
_USAGES: dict[int, struct.Struct] = {}  # by counter count (a policy has a few)
_PACKED = b"\x01"  # a decimal memory never starts with it
_MAX_KEY = 200  # longer key values and records are stored as a digest
_MAX_RECORD = 100
_KEPT = 16_384  # framings kept per layout (entities, clients); all dropped when full
SKIP = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"  # no reply to the next command
Result = tuple[list[tuple[float, ...]], ClientMemory]
# Per (specs, costs) pair: them (the cache is keyed by their ids), the script's description
# of the counters (``describe``, then framed in RESP), the key suffixes (window, record sets).
_Shape = tuple[tuple[CounterSpec, ...], tuple[int, ...], bytes, tuple[bytes, ...], bytes]


def pack(args: Sequence[bytes]) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


LOAD = pack((b"SCRIPT", b"LOAD", SCRIPT))


def _bytes(text: str, limit: int) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    if 0 < len(raw) <= limit and raw[0] != 0x7D:  # "}" first would leave the hash tag empty
        return raw
    return raw[:16].replace(b"}", b")") + b"~" + hashlib.blake2b(raw, digest_size=16).hexdigest().encode()


class Layout:
    """Key names and script arguments under one prefix (shared with the Cluster store)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode() + b":{"
        self._shapes: dict[tuple[int, int], _Shape] = {}
        self._framed: dict[tuple[str, tuple[bytes, ...]], bytes] = {}  # an entity's keys in RESP
        self._memory_keys: dict[str, bytes] = {}
        # Per counter specs (by identity, with them): which counter's record set each counts in
        self._owners: dict[int, tuple[tuple[CounterSpec, ...], tuple[int, ...]]] = {}

    def share_sets(self, specs: tuple[CounterSpec, ...], routes: Sequence[frozenset[str] | None]) -> None:
        """Say which requests count for each of these counters (``routes``: the route names, or
        None for all): distinct counters that count the same ones then share one record set."""
        if len(self._owners) >= _KEPT:  # a policy has a few dozen; reloaded very many times
            self._owners.clear()
        self._owners[id(specs)] = (specs, owners(specs, routes))
        self._shapes.clear()  # shapes made before this are stale

    def memory_key(self, client: str) -> bytes:
        key = self._memory_keys.get(client)
        if key is None:
            if len(self._memory_keys) >= _KEPT:
                self._memory_keys.clear()
            key = self._memory_keys[client] = self.prefix + _bytes(client, _MAX_KEY) + b"}:m"
        return key

    def window_key(self, key: str) -> bytes:
        """An entity's window key (every key of the entity has its slot)."""
        return self.prefix + _bytes(key, _MAX_KEY) + b"}:w"

    def script_args(
        self, updates: Sequence[KeyUpdate], memory_key: bytes | None, now: float
    ) -> tuple[list[bytes], list[bytes]]:
        """The script's KEYS and ARGV for these entities (and the client's memory, if given)."""
        prefix = self.prefix
        keys: list[bytes] = []
        argv = [stamp(now), b"%d" % len(updates)]
        for key, specs, costs, record in updates:
            shape = self._shape(specs, costs)
            base = prefix + _bytes(key, _MAX_KEY) + b"}:"
            keys += [base + suffix for suffix in shape[3]]
            argv.append(shape[2])
            argv.append(_bytes(record, _MAX_RECORD) if record else b"")
        if memory_key is not None:
            keys.append(memory_key)
        return keys, argv

    def evalsha(self, updates: Sequence[KeyUpdate], memory_key: bytes, now: float) -> bytes:
        """``EVALSHA`` of the script for these entities and the client's memory, framed in RESP.

        Written out rather than built from ``script_args`` and ``pack``, from framings kept
        per entity (a client's keys recur request after request): this runs once per decision.
        """
        framed, shapes = self._framed, self._shapes
        parts: list[bytes] = []
        argv: list[bytes] = []
        nkeys = 0
        last, last_framed = "", b"$0\r\n\r\n"
        for key, specs, costs, record in updates:
            shape = shapes.get((id(specs), id(costs)))
            if shape is None or shape[0] is not specs or shape[1] is not costs:
                shape = self._shape(specs, costs)
            suffixes = shape[3]
            keys = framed.get((key, suffixes))
            if keys is None:
                keys = self._frame_keys(key, suffixes)
            parts.append(keys)
            nkeys += len(suffixes)
            argv.append(shape[4])
            if record != last:  # an entity's record is nearly always the request's
                raw = _bytes(record, _MAX_RECORD) if record else b""
                last, last_framed = record, b"$%d\r\n%b\r\n" % (len(raw), raw)
            argv.append(last_framed)
        when = stamp(now)
        count = b"%d" % (nkeys + 1)
        entities = b"%d" % len(updates)
        return b"".join((
            b"*%d\r\n$7\r\nEVALSHA\r\n$40\r\n%b\r\n$%d\r\n%b\r\n" % (
                nkeys + 6 + len(argv), SHA, len(count), count),
            *parts,
            b"$%d\r\n%b\r\n" % (len(memory_key), memory_key),
            b"$%d\r\n%b\r\n$%d\r\n%b\r\n" % (len(when), when, len(entities), entities),
            *argv,
        ))

    def _frame_keys(self, key: str, suffixes: tuple[bytes, ...]) -> bytes:
        """An entity's keys for these counters, framed in RESP (kept: a client's recur)."""
        head = b"\r\n" + self.prefix + _bytes(key, _MAX_KEY) + b"}:"  # (a list, not a generator:
        size = len(head) - 2  # this runs for every entity seen for the first time)
        keys = b"".join([b"$%d%b%b\r\n" % (size + len(suffix), head, suffix) for suffix in suffixes])
        if len(self._framed) >= _KEPT:
            self._framed.clear()
        self._framed[(key, suffixes)] = keys
        return keys

    def _shape(self, specs: tuple[CounterSpec, ...], costs: tuple[int, ...]) -> _Shape:
        """The script's description of a key's counters and its key suffixes (cached)."""
        ident = (id(specs), id(costs))
        got = self._shapes.get(ident)
        if got is not None and got[0] is specs and got[1] is costs:  # (the entry holds them:
            return got  # their ids are not reused while it lives)
        if len(self._shapes) > 10_000:  # callers that make their tuples afresh: stay bounded
            self._shapes.clear()
        known = self._owners.get(id(specs))
        owner = known[1] if known is not None and known[0] is specs else tuple(range(len(specs)))
        spec, sets = describe(specs, costs, owner)
        suffixes = (b"w", *(b"d%d" % o for o in sets))
        framed = b"$%d\r\n%b\r\n" % (len(spec), spec)
        got = self._shapes[ident] = (specs, costs, spec, suffixes, framed)
        return got


def owners(specs: Sequence[CounterSpec], routes: Sequence[frozenset[str] | None]) -> tuple[int, ...]:
    """Per counter, the index of the counter whose record set it counts in (its own but where
    distinct counters count the same routes: then the one with the longest window, when it
    also has the largest limit, so that the shared set is what its own set was, key and all:
    no migration, and the others' sets are left to expire)."""
    owner = list(range(len(specs)))
    groups: dict[frozenset[str] | None, list[int]] = {}
    for i, spec in enumerate(specs):
        if spec[1]:
            groups.setdefault(routes[i], []).append(i)
    for members in groups.values():
        head = max(members, key=lambda i: (specs[i][0], specs[i][2]))
        if len(members) > 1 and all(specs[i][2] <= specs[head][2] for i in members):
            for i in members:
                owner[i] = head
    return tuple(owner)


def describe(
    specs: Sequence[CounterSpec], costs: Sequence[int], owner: Sequence[int]
) -> tuple[bytes, tuple[int, ...]]:
    """The script's description of an entity's counters (see ``lua/update.lua``: header, per
    counter, per record set), and the owners of its record sets in KEYS order. Everything the
    script would otherwise work out per call (each set's longest window, largest cap and TTL,
    whether the record goes in) is worked out here, once per shape."""
    sets = tuple(dict.fromkeys(o for o, (_, d, _) in zip(owner, specs, strict=True) if d))
    number = {o: s + 1 for s, o in enumerate(sets)}
    longest = {o: max(w for (w, d, _), m in zip(specs, owner, strict=True) if d and m == o) for o in sets}
    caps = {o: max(2 * lim + 16 for (_, d, lim), m in zip(specs, owner, strict=True) if d and m == o)
            for o in sets}
    first = {o: next(c for (_, d, _), m, c in zip(specs, owner, costs, strict=True) if d and m == o)
             for o in sets}
    windows = [(w, c) for (w, d, _), c in zip(specs, costs, strict=True) if not d]
    costly = any(c for _, c in windows)
    values: list[float] = [len(specs), len(windows), len(sets), float(costly)]
    for (w, d, lim), c, o in zip(specs, costs, owner, strict=True):
        values += [w, number[o], 2 * lim + 16, float(w == longest[o])] if d else [w, 0, 0, c]
    for o in sets:
        values += [longest[o], caps[o], float(first[o] != 0)]
    # the TTLs as the script passes them to Redis: decimal strings, each ended by a zero byte
    ttls = [math.ceil(2 * max(w for w, _ in windows)) + 1 if costly else 0,
            *(math.ceil(longest[o]) + 1 for o in sets)]
    return struct.pack(f"<{len(values)}d", *values) + b"".join(b"%d\0" % t for t in ttls), sets


def stamp(now: float) -> bytes:
    """The time as the script reads it (and as the record sets' score): 17 significant digits
    name every double exactly, and cost less to write than ``repr``'s shortest form."""
    return b"%.17g" % now


def memory_value(memory: ClientMemory) -> bytes:
    """The client's memory as stored: a tag byte, then its floats as little-endian doubles."""
    return _PACKED + _DOUBLES.pack(*memory.values)


def set_command(key: bytes, value: bytes, ttl: bytes) -> bytes:
    """``SET key value EX ttl``, framed in RESP."""
    return b"*5\r\n$3\r\nSET\r\n$%d\r\n%b\r\n$%d\r\n%b\r\n$2\r\nEX\r\n$%d\r\n%b\r\n" % (
        len(key), key, len(value), value, len(ttl), ttl)


def keep_command(key: bytes, memory: ClientMemory, ttl: bytes) -> bytes:
    """``CLIENT REPLY SKIP`` + ``SET key memory EX ttl``, framed in RESP: a write nobody waits for."""
    return SKIP + set_command(key, memory_value(memory), ttl)


def sizes(updates: Sequence[KeyUpdate]) -> tuple[int, ...]:
    """How many usages the script answers per entity (``decode`` splits its reply so)."""
    return tuple(len(update[1]) for update in updates)


def decode(reply: object, counts: Sequence[int], now: float) -> Result:
    """The script's reply: every counter's usage as a double, then the client's memory."""
    total = sum(counts)
    if not isinstance(reply, bytes) or len(reply) < 8 * total:
        raise StateError(f"redis: unexpected reply {reply!r:.80}")
    values = _usages(total).unpack_from(reply)
    usages: list[tuple[float, ...]] = []
    start = 0
    for count in counts:
        usages.append(values[start : start + count])
        start += count
    return usages, _memory(reply[8 * total :], now)


def _usages(count: int) -> struct.Struct:
    packing = _USAGES.get(count)
    if packing is None:
        packing = _USAGES[count] = struct.Struct(f"<{count}d")
    return packing


def _memory(raw: bytes, now: float) -> ClientMemory:
    if len(raw) == _DOUBLES.size + 1 and raw[:1] == _PACKED:
        return ClientMemory(values=list(_DOUBLES.unpack_from(raw, 1)))
    if raw:  # written by an earlier version: comma-separated decimals
        try:
            values = [float(x) for x in raw.split(b",")]
        except ValueError:
            values = []
        if len(values) == _MEMORY_SIZE:
            return ClientMemory(values=values)
    return ClientMemory(now)
