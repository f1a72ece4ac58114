"""What the Redis and Cluster stores send and read: key names, script arguments, replies.

The Lua script (``lua/update.lua``) and the RESP framing of the commands sent around
redis-py's command layer; the client's memory as stored (packed doubles). Shared by
``redis.py`` (one server) and ``cluster.py`` (Redis Cluster).
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate

SCRIPT = (files("scrapeshield.state") / "lua" / "update.lua").read_bytes()
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()
_MEMORY_SIZE = len(ClientMemory().values)
_DOUBLES = struct.Struct(f"<{_MEMORY_SIZE}d")
_PACKED = b"\x01"  # a decimal memory never starts with it
_MAX_KEY = 200  # longer key values and records are stored as a digest
_MAX_RECORD = 100
SKIP = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"  # no reply to the next command
Result = tuple[list[tuple[float, ...]], ClientMemory]


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
        self._shapes: dict[tuple[int, int], tuple[Any, Any, bytes, tuple[bytes, ...]]] = {}

    def memory_key(self, client: str) -> bytes:
        return self.prefix + _bytes(client, _MAX_KEY) + b"}:m"

    def window_key(self, key: str) -> bytes:
        """An entity's window key (every key of the entity has its slot)."""
        return self.prefix + _bytes(key, _MAX_KEY) + b"}:w"

    def script_args(
        self, updates: Sequence[KeyUpdate], memory_key: bytes | None, now: float
    ) -> tuple[list[bytes], list[bytes]]:
        """The script's KEYS and ARGV for these entities (and the client's memory, if given)."""
        prefix = self.prefix
        keys: list[bytes] = []
        argv = [repr(float(now)).encode(), b"%d" % len(updates)]
        for key, specs, costs, record in updates:
            spec, sets = self._shape(specs, costs)
            base = prefix + _bytes(key, _MAX_KEY) + b"}:"
            keys.append(base + b"w")
            for suffix in sets:
                keys.append(base + suffix)
            argv.append(spec)
            argv.append(_bytes(record, _MAX_RECORD) if record else b"")
        if memory_key is not None:
            keys.append(memory_key)
        return keys, argv

    def _shape(
        self, specs: tuple[CounterSpec, ...], costs: tuple[int, ...]
    ) -> tuple[bytes, tuple[bytes, ...]]:
        """The script's description of a key's counters, and its record-set key suffixes (cached)."""
        ident = (id(specs), id(costs))
        got = self._shapes.get(ident)
        if got is None or got[0] is not specs or got[1] is not costs:
            spec = struct.pack(f"<{4 * len(specs)}d", *(
                x for (w, d, lim), c in zip(specs, costs, strict=True) for x in (w, d, lim, c)))
            sets = tuple(b"d%d" % i for i, (_, d, _) in enumerate(specs) if d)
            if len(self._shapes) > 10_000:
                self._shapes.clear()
            got = self._shapes[ident] = (specs, costs, spec, sets)
        return got[2], got[3]


def memory_value(memory: ClientMemory) -> bytes:
    """The client's memory as stored: a tag byte, then its floats as little-endian doubles."""
    return _PACKED + _DOUBLES.pack(*memory.values)


def decode(reply: bytes, count: int, now: float) -> Result:
    """The script's reply: per entity its usages, then the client's memory."""
    if not isinstance(reply, bytes):
        raise StateError(f"redis: unexpected reply {reply!r:.80}")
    parts = reply.split(b"|", count)
    if len(parts) != count + 1:
        raise StateError(f"redis: unexpected reply {reply[:80]!r}")
    return [tuple(map(float, p.split())) for p in parts[:count]], _memory(parts[count], now)


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
