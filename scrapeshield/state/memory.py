"""In-process counter state: sliding windows and distinct-record sets in dicts.

Sliding windows use the two-bucket estimate (previous fixed window weighted by
its overlap, plus the current one): O(1) time and 3 floats per limit, never more
than the exact count over the last two windows and never less than the current
window's count. Distinct records are exact: an insertion-ordered dict of
record → last read, expired from the front, capped at 2×limit+16 entries.

Memory stays bounded by generations: keys untouched for ``idle_ttl`` seconds are
dropped wholesale, and a generation that reaches ``max_keys`` turns over early.
Windows live in ``array('d')`` and record sets in str→float dicts, neither of
which the cyclic garbage collector tracks: a million clients do not make every
collection slower. Cost measured by ``bench/memory.py`` at one million clients under the
default policy (ip, subnet and account keys, two profiles read each): ~1.9 KB per
client, bounded caches of the context stage included.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate

_ZEROS = {n: array("d", [0.0] * (3 * n)) for n in range(1, 17)}
_NO_SETS: tuple[dict[str, float], ...] = ()
_EMPTY: dict[str, float] = {}  # placeholder for counters that are not distinct sets; never written
_SHAPES: dict[int, tuple[tuple[CounterSpec, ...], bool]] = {}


def _has_distinct(specs: tuple[CounterSpec, ...]) -> bool:
    """Whether any counter under a key is a distinct set (cached per specs tuple)."""
    shape = _SHAPES.get(id(specs))
    if shape is None or shape[0] is not specs:
        shape = (specs, any(distinct for _, distinct, _ in specs))
        if len(_SHAPES) > 10_000:
            _SHAPES.clear()
        _SHAPES[id(specs)] = shape
    return shape[1]


class _Generation:
    __slots__ = ("windows", "sets", "memories")

    def __init__(self) -> None:
        self.windows: dict[str, array[float]] = {}  # key → (start, current, previous) per counter
        self.sets: dict[str, tuple[dict[str, float], ...]] = {}  # key → record → last read
        self.memories: dict[str, ClientMemory] = {}  # client key → behaviour memory


class MemoryStore:
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
        usages: list[tuple[float, ...]] = []
        for key, specs, costs, record in updates:
            windows = young.windows.get(key)
            if windows is None or len(windows) != 3 * len(specs):
                windows = old.windows.pop(key, None)
                if windows is None or len(windows) != 3 * len(specs):
                    windows = array("d", _ZEROS.get(len(specs)) or [0.0] * (3 * len(specs)))
                young.windows[key] = windows
            sets = _NO_SETS
            if _has_distinct(specs):
                sets = young.sets.get(key) or _NO_SETS
                if len(sets) != len(specs):
                    sets = old.sets.pop(key, _NO_SETS)
                    if len(sets) != len(specs):
                        sets = tuple([{} if distinct else _EMPTY for _, distinct, _ in specs])
                    young.sets[key] = sets
            usages.append(_count(windows, sets, specs, costs, record, now))
        memory = young.memories.get(client)
        if memory is None:
            memory = old.memories.pop(client, None) or ClientMemory(now)
            young.memories[client] = memory
        return usages, memory

    def _turn(self, now: float) -> None:
        if self._turned_at is not None:
            self._old = self._young
            self._young = _Generation()
        self._turned_at = now


def _count(
    windows: array[float],
    sets: tuple[dict[str, float], ...],
    specs: tuple[CounterSpec, ...],
    costs: tuple[int, ...],
    record: str,
    now: float,
) -> tuple[float, ...]:
    result: list[float] = []
    base = 0
    for i, (w, distinct, limit) in enumerate(specs):
        if distinct:
            result.append(_distinct(sets[i], w, limit, record if costs[i] else "", now))
        else:
            start = now - now % w
            if start > windows[base]:
                windows[base + 2] = windows[base + 1] if start - windows[base] <= w else 0.0
                windows[base + 1] = 0.0
                windows[base] = start
            windows[base + 1] += costs[i]
            result.append(windows[base + 2] * (1.0 - (now - start) / w) + windows[base + 1])
        base += 3
    return tuple(result)


def _distinct(seen: dict[str, float], window: float, limit: int, record: str, now: float) -> float:
    if record:
        if record in seen:
            del seen[record]
        seen[record] = now
        if len(seen) > 2 * limit + 16:
            del seen[next(iter(seen))]
    horizon = now - window
    while seen:
        oldest = next(iter(seen))
        if seen[oldest] > horizon:
            break
        del seen[oldest]
    return float(len(seen))
