"""The in-memory backend beyond the shared contract: accuracy properties and bounded memory."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scrapeshield.policy.compiled import CompiledLimit
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
