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
collection slower. Cost per tracked client: see ``bench/memory.py``.
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence

from scrapeshield.policy.compiled import CompiledLimit
from scrapeshield.state.base import ClientMemory, KeyUpdate

_ZEROS = {n: array("d", [0.0] * (3 * n)) for n in range(1, 17)}


class _Generation:
    __slots__ = ("windows", "sets", "memories")

    def __init__(self) -> None:
        self.windows: dict[str, array[float]] = {}  # key → (start, current, previous) per limit
        self.sets: dict[str, dict[str, float]] = {}  # key#limit → record → last read
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
        self._maybe_turn(now)
        young, old = self._young, self._old
        usages: list[tuple[float, ...]] = []
        for key, limits, costs, record in updates:
            windows = young.windows.get(key)
            if windows is None or len(windows) != 3 * len(limits):
                windows = old.windows.pop(key, None)
                if windows is None or len(windows) != 3 * len(limits):
                    windows = array("d", _ZEROS.get(len(limits)) or [0.0] * (3 * len(limits)))
                young.windows[key] = windows
            usages.append(_count(young, old, key, windows, limits, costs, record, now))
        memory = young.memories.get(client)
        if memory is None:
            memory = old.memories.pop(client, None) or ClientMemory(now)
            young.memories[client] = memory
        return usages, memory

    def _maybe_turn(self, now: float) -> None:
        if self._turned_at is None:
            self._turned_at = now
        elif now - self._turned_at >= self.idle_ttl or len(self._young.windows) >= self.max_keys:
            self._old = self._young
            self._young = _Generation()
            self._turned_at = now


def _count(
    young: _Generation,
    old: _Generation,
    key: str,
    windows: array[float],
    limits: tuple[CompiledLimit, ...],
    costs: tuple[int, ...],
    record: str,
    now: float,
) -> tuple[float, ...]:
    result: list[float] = []
    for i, lim in enumerate(limits):
        cost = costs[i]
        if lim.distinct:
            set_key = f"{key}#{i}"
            seen = young.sets.get(set_key)
            if seen is None:
                seen = old.sets.pop(set_key, None)
                if seen is None:
                    seen = {}
                young.sets[set_key] = seen
            result.append(_distinct(seen, lim, record if cost else "", now))
            continue
        w = lim.window
        start = now - now % w
        base = 3 * i
        if start > windows[base]:
            windows[base + 2] = windows[base + 1] if start - windows[base] <= w else 0.0
            windows[base + 1] = 0.0
            windows[base] = start
        windows[base + 1] += cost
        result.append(windows[base + 2] * (1.0 - (now - start) / w) + windows[base + 1])
    return tuple(result)


def _distinct(seen: dict[str, float], lim: CompiledLimit, record: str, now: float) -> float:
    if record:
        if record in seen:
            del seen[record]
        seen[record] = now
        if len(seen) > 2 * lim.limit + 16:
            del seen[next(iter(seen))]
    horizon = now - lim.window
    while seen:
        oldest = next(iter(seen))
        if seen[oldest] > horizon:
            break
        del seen[oldest]
    return float(len(seen))
