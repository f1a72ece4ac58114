"""In-process counter state: sliding windows and distinct-record sets in dicts.

Sliding windows use the two-bucket estimate (previous fixed window weighted by
its overlap, plus the current one): O(1) time and 3 floats per limit, never more
than the exact count over the last two windows and never less than the current
window's count. Distinct records are exact: an insertion-ordered dict of
record → last read, expired from the front, capped at 2×limit+16 entries.

Memory stays bounded by generations: keys untouched for ``idle_ttl`` seconds are
dropped wholesale, and a generation that reaches ``max_keys`` turns over early.
Cost measured by ``bench/memory.py``: about 600 bytes per tracked client under
the default policy (ip and subnet keys, a handful of records each).
"""

from __future__ import annotations

from collections.abc import Sequence

from scrapeshield.policy.compiled import CompiledLimit
from scrapeshield.state.base import ClientMemory, KeyUpdate


class _Entry:
    __slots__ = ("windows", "sets", "memory")

    def __init__(self, limits: tuple[CompiledLimit, ...]) -> None:
        self.windows: list[float] = [0.0] * (3 * len(limits))  # start, current, previous
        self.sets: list[dict[str, float] | None] = [
            {} if lim.distinct else None for lim in limits
        ]
        self.memory: ClientMemory | None = None


class MemoryStore:
    def __init__(self, idle_ttl: float = 3600.0, max_keys: int = 1_000_000) -> None:
        self.idle_ttl = idle_ttl
        self.max_keys = max(1, max_keys // 2)  # per generation
        self._young: dict[str, _Entry] = {}
        self._old: dict[str, _Entry] = {}
        self._turned_at: float | None = None

    def tracked_clients(self) -> int:
        return len(self._young) + len(self._old)

    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        self._maybe_turn(now)
        usages: list[tuple[float, ...]] = []
        memory: ClientMemory | None = None
        for key, limits, costs, record in updates:
            entry = self._entry(key, limits)
            usages.append(_count(entry, limits, costs, record, now))
            if key == client:
                memory = entry.memory
                if memory is None:
                    memory = entry.memory = ClientMemory(now)
        if memory is None:
            entry = self._entry(client, ())
            memory = entry.memory
            if memory is None:
                memory = entry.memory = ClientMemory(now)
        return usages, memory

    def _entry(self, key: str, limits: tuple[CompiledLimit, ...]) -> _Entry:
        entry = self._young.get(key)
        if entry is None:
            entry = self._old.pop(key, None)
            if entry is None or len(entry.sets) != len(limits) and limits:
                entry = _Entry(limits)
            self._young[key] = entry
        elif limits and len(entry.sets) != len(limits):
            entry.windows = [0.0] * (3 * len(limits))
            entry.sets = [{} if lim.distinct else None for lim in limits]
        return entry

    def _maybe_turn(self, now: float) -> None:
        if self._turned_at is None:
            self._turned_at = now
        elif now - self._turned_at >= self.idle_ttl or len(self._young) >= self.max_keys:
            self._old = self._young
            self._young = {}
            self._turned_at = now


def _count(
    entry: _Entry,
    limits: tuple[CompiledLimit, ...],
    costs: tuple[int, ...],
    record: str,
    now: float,
) -> tuple[float, ...]:
    result: list[float] = []
    windows = entry.windows
    for i, lim in enumerate(limits):
        cost = costs[i]
        seen = entry.sets[i]
        if seen is not None:
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
        weight = 1.0 - (now - start) / w
        result.append(windows[base + 2] * weight + windows[base + 1])
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
