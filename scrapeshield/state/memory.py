"""In-process counter state: sliding windows and distinct-record sets in dicts.

Sliding windows use the two-bucket estimate (previous fixed window weighted by
its overlap, plus the current one): O(1) time and 3 floats per limit, never more
than the exact count over the last two windows and never less than the current
window's count. Distinct records are exact: an insertion-ordered dict of
record → last read, expired from the front, capped at 2×limit+16 entries.

Memory stays bounded by generations: keys untouched for ``idle_ttl`` seconds are
dropped wholesale, and a generation that reaches ``max_keys`` turns over early.
Windows and client memories live packed in bytes, and record sets in str→float
dicts: neither is ever tracked by the cyclic garbage collector, so the big dicts
holding them stay untracked too (a dict of tuples is re-tracked at each insertion and
then walked whole by the next collections): a million clients do not make
collections slower. Cost measured by ``bench/memory.py`` at one million clients under the
default policy (ip, subnet, account and campaign-trait keys, about five per client, two
profiles read each): ~3.5 KB per client, bounded caches of the context stage included
(at 200,000 clients: 3.7 KB, against 4.5 KB when windows were tuples of floats).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Final

from scrapeshield.state.base import MEMORY_SIZE, ClientMemory, CounterSpec, KeyUpdate

# Per tuple of counter specs (the policy compiles them once, so they are few and long-lived):
# (the specs, the packing of their 3 floats per counter, zeros so packed, per counter (offset
# of its 3 floats, window, distinct?, limit, suffix of its record set's key)).
_Shape = tuple[
    tuple[CounterSpec, ...], struct.Struct, bytes, tuple[tuple[int, float, bool, int, str], ...]
]
_SHAPES: Final[dict[int, _Shape]] = {}
_MEMORY: Final = struct.Struct(f"{MEMORY_SIZE}d")


def _shape(specs: tuple[CounterSpec, ...]) -> _Shape:
    """What ``update`` needs to know about a tuple of specs, computed once per tuple."""
    shape = _SHAPES.get(id(specs))
    if shape is None or shape[0] is not specs:
        counters = tuple((3 * i, w, distinct, limit, f"#{i}") for i, (w, distinct, limit) in enumerate(specs))
        packing = struct.Struct(f"{3 * len(specs)}d")
        shape = (specs, packing, packing.pack(*(0.0,) * (3 * len(specs))), counters)
        if len(_SHAPES) > 10_000:
            _SHAPES.clear()
        _SHAPES[id(specs)] = shape  # the entry holds ``specs``: its id is not reused meanwhile
    return shape


class _Generation:
    __slots__ = ("windows", "sets", "memories")

    def __init__(self) -> None:
        self.windows: dict[str, bytes] = {}  # key → packed (start, current, previous) per counter
        self.sets: dict[str, dict[str, float]] = {}  # "key#counter" → record → last read
        self.memories: dict[str, bytes] = {}  # client key → packed ClientMemory values


class MemoryStore:
    does_io = False

    def __init__(self, idle_ttl: float = 3600.0, max_keys: int = 1_000_000) -> None:
        self.idle_ttl = idle_ttl
        self.max_keys = max(1, max_keys // 2)  # per generation
        self._young = _Generation()
        self._old = _Generation()
        self._turned_at: float | None = None

    def tracked_clients(self) -> int:
        return len(self._young.windows) + len(self._old.windows)

    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        if self._turned_at is None or now - self._turned_at >= self.idle_ttl or (
            len(self._young.windows) >= self.max_keys
        ):
            self._turn(now)
        young, old = self._young, self._old
        young_windows, young_sets = young.windows, young.sets
        usages: list[tuple[float, ...]] = []
        # One flat loop (this runs for every key of every request): the window arithmetic
        # and the distinct sets are written out here rather than in helpers.
        for key, specs, costs, record in updates:
            shape = _SHAPES.get(id(specs))
            if shape is None or shape[0] is not specs:
                shape = _shape(specs)
            _, packing, zeros, counters = shape
            size = packing.size
            windows = young_windows.get(key)
            if windows is None or len(windows) != size:
                windows = old.windows.pop(key, None)
                if windows is None or len(windows) != size:
                    windows = zeros
            counted: list[float] | None = None
            usage: list[float] = []
            for i, (base, w, distinct, limit, suffix) in enumerate(counters):
                if distinct:
                    taken = record if costs[i] else ""
                    set_key = key + suffix
                    seen = young_sets.get(set_key)
                    if seen is None:
                        seen = old.sets.pop(set_key, None)
                        if seen is None:
                            if not taken:  # nothing read, nothing kept: an empty set counts 0
                                usage.append(0.0)
                                continue
                            seen = {}
                        # Each set is its own entry: a dict of str → float is never tracked by
                        # the garbage collector, but a tuple or list holding dicts always is.
                        young_sets[set_key] = seen
                    if taken:
                        seen.pop(taken, None)  # a re-read moves the record to the back
                        seen[taken] = now
                        if len(seen) > 2 * limit + 16:
                            del seen[next(iter(seen))]
                    horizon = now - w
                    while seen:
                        oldest = next(iter(seen))
                        if seen[oldest] > horizon:
                            break
                        del seen[oldest]
                    usage.append(float(len(seen)))
                else:
                    if counted is None:
                        counted = list(packing.unpack(windows))
                    start = now - now % w
                    began = counted[base]
                    if start > began:
                        counted[base + 2] = counted[base + 1] if start - began <= w else 0.0
                        counted[base + 1] = 0.0
                        counted[base] = start
                    current = counted[base + 1] + costs[i]
                    counted[base + 1] = current
                    usage.append(counted[base + 2] * (1.0 - (now - start) / w) + current)
            usages.append(tuple(usage))
            young_windows[key] = windows if counted is None else packing.pack(*counted)
        values = young.memories.get(client)
        if values is None:
            values = old.memories.pop(client, None)
        memory = ClientMemory(now) if values is None else ClientMemory(values=list(_MEMORY.unpack(values)))
        return usages, memory

    async def aupdate(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        return self.update(updates, client, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        self._young.memories[client] = _MEMORY.pack(*memory.values)

    def _turn(self, now: float) -> None:
        if self._turned_at is not None:
            self._old = self._young
            self._young = _Generation()
        self._turned_at = now
