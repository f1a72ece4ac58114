"""The in-memory backend beyond the shared contract: accuracy properties and bounded memory."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapeshield.policy.compiled import CompiledLimit
from scrapeshield.state.base import MEMORY_SIZE, ClientMemory
from scrapeshield.state.layout import owners
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action


def limit(window: float = 60, count: int = 10, distinct: bool = False) -> CompiledLimit:
    return CompiledLimit(0, "l", "ip", window, count, distinct, None, Action.THROTTLE)


def spec(lim: CompiledLimit) -> tuple[float, bool, int]:
    return (lim.window, lim.distinct, lim.limit)


def hit(store: MemoryStore, lim: CompiledLimit, now: float, record: str = "", key: str = "ip:a") -> float:
    usages, _ = store.update([(key, (spec(lim),), (1,), record)], key, now)
    return usages[0][0]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=600), min_size=1, max_size=200))
def test_estimate_bounded_by_exact_counts(offsets: list[float]) -> None:
    """current-window count ≤ estimate ≤ exact count over the last two windows."""
    window = 60.0
    store, lim = MemoryStore(), limit(window, 10_000)
    times = sorted(10_000.0 + o for o in offsets)
    for i, now in enumerate(times):
        estimate = hit(store, lim, now)
        start = now - now % window
        in_current = sum(1 for t in times[: i + 1] if t >= start)
        in_two = sum(1 for t in times[: i + 1] if t >= start - window)
        assert in_current - 1e-9 <= estimate <= in_two + 1e-9


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 30), st.floats(0, 5)), min_size=1, max_size=120))
def test_distinct_matches_exact_set(reads: list[tuple[int, float]]) -> None:
    window = 20.0
    store, lim = MemoryStore(), limit(window, 1000, distinct=True)
    now = 5000.0
    history: list[tuple[float, int]] = []
    for record, gap in reads:
        now += gap
        history.append((now, record))
        got = hit(store, lim, now, f"user:{record}")
        exact = {r for t, r in history if t > now - window}
        assert got == len(exact)


def test_distinct_memory_capped() -> None:
    store, lim = MemoryStore(), limit(3600, 10, distinct=True)
    for i in range(10_000):
        value = hit(store, lim, 100.0 + i * 0.01, f"user:{i}")
    assert value == 2 * 10 + 16  # still far over the limit, memory bounded


def test_idle_clients_forgotten_and_memory_bounded() -> None:
    store, lim = MemoryStore(idle_ttl=60, max_keys=1000), limit(10, 5)
    for i in range(5000):
        hit(store, lim, 100.0, key=f"ip:{i}")
    assert store.tracked_clients() <= 1000
    hit(store, lim, 500.0, key="ip:new")
    hit(store, lim, 600.0, key="ip:new")
    assert store.tracked_clients() <= 2


class _Reference:
    """The store as it was before keys kept one entry each (windows apart from every record
    set, no layout tags): the faster layout must answer exactly what this one answers."""

    def __init__(self, idle_ttl: float, max_keys: int) -> None:
        self.idle_ttl, self.max_keys = idle_ttl, max(1, max_keys // 2)
        self.young: tuple[dict[str, list[float]], dict[str, dict[str, float]]] = ({}, {})
        self.old: tuple[dict[str, list[float]], dict[str, dict[str, float]]] = ({}, {})
        self.turned_at: float | None = None

    def update(self, key: str, specs: tuple[tuple[float, bool, int], ...], costs: tuple[int, ...],
               record: str, now: float) -> tuple[float, ...]:
        full = len(self.young[0]) >= self.max_keys
        if self.turned_at is None or now - self.turned_at >= self.idle_ttl or full:
            if self.turned_at is not None:
                self.old, self.young = self.young, ({}, {})
            self.turned_at = now
        (windows, sets), (old_windows, old_sets) = self.young, self.old
        counted = windows.get(key)
        if counted is None or len(counted) != 3 * len(specs):
            counted = old_windows.pop(key, None)
            if counted is None or len(counted) != 3 * len(specs):
                counted = [0.0] * (3 * len(specs))
        counted = list(counted)
        usage: list[float] = []
        for i, (w, distinct, limit) in enumerate(specs):
            if distinct:
                taken = record if costs[i] else ""
                seen = sets.get(f"{key}#{i}")
                if seen is None:
                    seen = old_sets.pop(f"{key}#{i}", None)
                    if seen is None:
                        if not taken:
                            usage.append(0.0)
                            continue
                        seen = {}
                    sets[f"{key}#{i}"] = seen
                if taken:
                    seen.pop(taken, None)
                    seen[taken] = now
                    if len(seen) > 2 * limit + 16:
                        del seen[next(iter(seen))]
                while seen and seen[next(iter(seen))] <= now - w:
                    del seen[next(iter(seen))]
                usage.append(float(len(seen)))
            else:
                start = now - now % w
                if start > counted[3 * i]:
                    counted[3 * i + 2] = counted[3 * i + 1] if start - counted[3 * i] <= w else 0.0
                    counted[3 * i + 1], counted[3 * i] = 0.0, start
                counted[3 * i + 1] += costs[i]
                usage.append(counted[3 * i + 2] * (1.0 - (now - start) / w) + counted[3 * i + 1])
        windows[key] = counted
        return tuple(usage)


# Layouts a key may be counted under across policy reloads: its first distinct set first,
# second, not at all, or alone; two of them with as many counters and different sets.
_LAYOUTS: tuple[tuple[tuple[float, bool, int], ...], ...] = (
    ((10.0, False, 5), (30.0, True, 3), (50.0, True, 4)),
    ((30.0, True, 3), (10.0, False, 5), (20.0, False, 9)),
    ((10.0, False, 5), (40.0, False, 7)),
    ((25.0, True, 2),),
    ((),)[0],
    ((20.0, True, 3), (40.0, True, 5), (10.0, False, 5), (50.0, True, 6)),
)
# The routes each counter counts (share_sets): distinct counters of the same routes share the
# set of the one with the longest window and largest limit, when told (the first layout: the
# second counter counts in the third's set; the last: the first in the fourth's, which is not
# the set in the key's entry, the second's).
_A, _B = frozenset({"a"}), frozenset({"b"})
_ROUTES: tuple[tuple[frozenset[str] | None, ...], ...] = (
    (None, None, None), (None, None, None), (None, None), (None,), (), (_A, _B, None, _A))


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, len(_LAYOUTS) - 1),
                          st.lists(st.integers(0, 2), min_size=3, max_size=3),
                          st.sampled_from(["", "user:1", "user:2", "user:3", "user:4", "user:5"]),
                          st.floats(0, 12)),
                min_size=1, max_size=150),
       st.booleans(), st.one_of(st.none(), st.integers(0, 8)))
def test_same_counts_as_the_layout_before_across_reloads(
    steps: list[tuple[int, int, list[int], str, float]], small: bool, shared_from: int | None
) -> None:
    """Keys counted under changing layouts (policy reloads), with generations turning over:
    every usage is the one the store gave before it kept a key's windows and first set together.
    ``shared_from``: from that step on, distinct counters of the same routes share one record
    set (``share_sets``, as the engine says at install) and each key keeps one layout: a counter
    that counted in another's set has no set of its own to carry over to another layout."""
    idle, keys = (15.0, 4) if small else (3600.0, 1000)
    store, reference = MemoryStore(idle_ttl=idle, max_keys=keys), _Reference(idle, keys)
    layouts = [tuple(tuple(c) for c in layout) for layout in _LAYOUTS]  # fresh tuples, as a reload makes
    heads = [owners(specs, routes) for specs, routes in zip(layouts, _ROUTES, strict=True)]
    kept: dict[int, int] = {}  # with sharing: each key's layout
    now = 1000.0
    for n, (key, drawn, costs, record, gap) in enumerate(steps):
        if n == shared_from:
            for specs, routes in zip(layouts, _ROUTES, strict=True):
                store.share_sets(specs, routes)
        layout = drawn if shared_from is None else kept.setdefault(key, drawn)
        now += gap
        specs = layouts[layout]
        # counters of the same routes cost alike (what sharing is told)
        cost = tuple((costs + [1])[heads[layout][i]] for i in range(len(specs)))
        usages, _ = store.update([(f"k:{key}", specs, cost, record)], "c", now)
        assert usages[0] == reference.update(f"k:{key}", specs, cost, record, now)


def test_client_memory_fields_are_views_of_its_values() -> None:
    memory = ClientMemory(5.0)
    assert memory.values[:2] == [5.0, 5.0] and len(memory.values) == MEMORY_SIZE
    assert memory.last_number == -1 and memory.requests == 0
    memory.requests += 2
    assert memory.values[2] == 2 and memory.requests == 2 and isinstance(memory.requests, int)
    memory.values[5] = 7.0
    assert memory.last_number == 7 and isinstance(memory.last_number, int)
    memory.gap_mean = 1.5
    assert memory.values[11] == 1.5 and memory.gap_mean == 1.5
    restored = ClientMemory(values=list(memory.values))
    assert restored.requests == 2 and restored.shared == ()


def test_busy_big_sets_count_as_before() -> None:
    """Sets past a thousand records that lose one at most reads (the cap, as a fingerprint
    shared by a fleet) turn into an OrderedDict when due for compaction (_compacted): every
    usage stays the one the store gave before, re-reads and generation turnovers included,
    for a key's first set and a further one."""
    store, reference = MemoryStore(idle_ttl=400.0), _Reference(400.0, 1_000_000)
    specs = ((60.0, False, 10), (600.0, True, 600), (900.0, True, 1500))  # caps 1216 and 3016
    now = 1000.0
    for i in range(7000):
        now += 0.1
        record = f"user:{(i * 7919) % 4000}" if i % 5 else ""
        costs = (1, 1, 1) if i % 7 else (1, 0, 1)
        usages, _ = store.update([("trait-fp:x", specs, costs, record)], "c", now)
        assert usages[0] == reference.update("trait-fp:x", specs, costs, record, now), i
    assert usages[0][1:] == (1216.0, 3016.0)


def test_big_sets_count_exactly_while_compacted() -> None:
    """Busy record sets lose their oldest records at every read and are compacted now and
    then (MemoryStore._due): the counts stay those of an exact set, for a key's first set
    (kept in its entry) and a further one (an entry of its own)."""
    store = MemoryStore()
    specs = ((30.0, True, 5000), (50.0, True, 5000))
    history: list[tuple[float, str]] = []
    now = 1000.0
    for i in range(6000):
        now += 0.1
        record = f"user:{(i * 7919) % 2000}"
        history.append((now, record))
        usages, _ = store.update([("trait-fp:x", specs, (1, 1), record)], "c", now)
        if i % 97 == 0 or i > 5980:
            for (window, _, _), got in zip(specs, usages[0], strict=True):
                assert got == len({r for t, r in history if t > now - window})


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from([1.0, 7.0, 10.0, 60.0, 86400.0, 0.5, 2.5, 0.1, 1e-3]),
                          st.one_of(st.floats(0, 2e9), st.integers(0, 2_000_000_000).map(float),
                                    st.integers(0, 40_000_000).map(lambda n: n * 60.0),
                                    st.floats(-100, 0), st.just(2.0**52), st.just(2.0**53 + 2))),
                min_size=1, max_size=60))
def test_window_starts_reused_are_the_ones_computed(calls: list[tuple[float, float]]) -> None:
    """A window start found before and reused (``_start``) is bit for bit the one computed
    afresh (``now - now % w``), windows that are no whole number of seconds included, at
    their boundaries, out of order, for negative and huge timestamps."""
    import struct

    from scrapeshield.state.memory import _start, _whole

    windows = [1.0, 7.0, 10.0, 60.0, 86400.0, 0.5, 2.5, 0.1, 1e-3]
    starts = [-math.inf if _whole(w) else math.nan for w in windows]
    for w, now in calls:
        begun = now - now % w
        # the time itself, then the next window's first instant and the last one before it
        for t in (now, begun + w, math.nextafter(begun, -math.inf), now):
            got = _start(starts, windows.index(w), w, t)
            assert struct.pack("d", got) == struct.pack("d", t - t % w), (w, t)


def test_shared_sets_count_as_sets_of_their_own() -> None:
    """A distinct counter counted in a longer one's set (``share_sets``) answers what a set of
    its own answers: reads that leave its window exactly at a read, and over its cap."""
    for step in (0.5, 0.25):  # (0.25: more reads in the shorter window than its cap, 22)
        specs = ((10.0, True, 3), (60.0, False, 50), (60.0, True, 20))
        store, reference = MemoryStore(), _Reference(3600.0, 1000)
        store.share_sets(specs, (None, None, None))
        for i in range(400):
            now = 1000.0 + i * step
            record = f"user:{i % 70}" if i % 9 else ""
            usages, _ = store.update([("ip:a", specs, (1, 1, 1), record)], "ip:a", now)
            assert usages[0] == reference.update("ip:a", specs, (1, 1, 1), record, now), (step, i)


def test_layouts_found_by_identity_or_by_id_count_alike() -> None:
    """The store tries its first 16 layouts by identity, then the rest by ``id()``: specs
    built anew for every call (equal tuples, other objects: past the 16, and with ids
    reused once freed) count exactly as one specs tuple held for good, and a new sharing
    (``share_sets``) takes effect at once."""
    held = ((10.0, False, 100), (60.0, True, 5), (600.0, True, 50))
    steady, fresh = MemoryStore(), MemoryStore()
    for n in range(200):
        record = f"r{n % 13}"
        specs = tuple(list(held))  # a new tuple each call
        assert fresh.update([("k", specs, (1, 1, 1), record)], "c", n * 0.7)[0] == \
            steady.update([("k", held, (1, 1, 1), record)], "c", n * 0.7)[0]
    assert len(fresh._hot) == 16 and len(steady._hot) == 1
    for store in (steady, fresh):
        store.share_sets(held, [None, None, None])
    assert steady._hot == [] and fresh._hot == []
    for n in range(200, 260):
        got = steady.update([("k", held, (1, 1, 1), f"r{n % 13}")], "c", n * 0.7)[0]
        assert got == fresh.update([("k", tuple(list(held)), (1, 1, 1), f"r{n % 13}")], "c", n * 0.7)[0]
