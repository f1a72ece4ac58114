"""In-process counter state: sliding windows and distinct-record sets in dicts.

Sliding windows use the two-bucket estimate (previous fixed window weighted by
its overlap, plus the current one): O(1) time and 3 floats per limit, never more
than the exact count over the last two windows and never less than the current
window's count. Distinct records are exact: an insertion-ordered dict of
record → last read, expired from the front, capped at 2×limit+16 entries.

Memory stays bounded by generations: keys untouched for ``idle_ttl`` seconds are
dropped wholesale, and a generation that reaches ``max_keys`` turns over early.
Windows live in tuples of floats and record sets in str→float dicts, which the
cyclic garbage collector stops tracking: a million clients do not make every
collection slower. Cost measured by ``bench/memory.py`` at one million clients under the
default policy (ip, subnet and account keys, two profiles read each): ~1.9 KB per
client, bounded caches of the context stage included.
"""

from __future__ import annotations

from collections.abc import Sequence

from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate

_ZEROS = {n: (0.0,) * (3 * n) for n in range(1, 17)}
_NO_SETS: list[dict[str, float]] = []
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
        self.windows: dict[str, tuple[float, ...]] = {}  # key → (start, current, previous) per counter
        self.sets: dict[str, dict[str, float]] = {}  # "key#counter" → record → last read
        self.memories: dict[str, tuple[float, ...]] = {}  # client key → ClientMemory values


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
        usages: list[tuple[float, ...]] = []
        for key, specs, costs, record in updates:
            windows = young.windows.get(key)
            if windows is None or len(windows) != 3 * len(specs):
                windows = old.windows.pop(key, None)
                if windows is None or len(windows) != 3 * len(specs):
                    windows = _ZEROS.get(len(specs)) or (0.0,) * (3 * len(specs))
            sets: list[dict[str, float]] = _NO_SETS
            if _has_distinct(specs):
                sets = [_record_set(young, old, f"{key}#{i}") if distinct else _EMPTY
                        for i, (_, distinct, _) in enumerate(specs)]
            counted = list(windows)
            usages.append(_count(counted, sets, specs, costs, record, now))
            young.windows[key] = tuple(counted)
        values = young.memories.get(client)
        if values is None:
            values = old.memories.pop(client, None)
        memory = ClientMemory(now) if values is None else ClientMemory(values=list(values))
        return usages, memory

    async def aupdate(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        return self.update(updates, client, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        self._young.memories[client] = tuple(memory.values)

    def _turn(self, now: float) -> None:
        if self._turned_at is not None:
            self._old = self._young
            self._young = _Generation()
        self._turned_at = now


def _record_set(young: _Generation, old: _Generation, key: str) -> dict[str, float]:
    # Each set is its own entry: a dict of str → float is never tracked by the garbage
    # collector, but a tuple or list holding dicts always is.
    seen = young.sets.get(key)
    if seen is None:
        seen = old.sets.pop(key, None)
        if seen is None:
            seen = {}
        young.sets[key] = seen
    return seen


def _count(
    windows: list[float],
    sets: list[dict[str, float]],
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
