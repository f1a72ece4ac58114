"""The contract every counter-state backend passes (memory now; Redis later).

Each ``check_*`` takes a factory that returns a fresh, empty store and raises
AssertionError naming the broken promise. Run them all with ``check_store``.
"""

from __future__ import annotations

from collections.abc import Callable

from scrapeshield.state.base import CounterSpec, StateStore

StoreFactory = Callable[[], StateStore]


def _hit(store: StateStore, spec: CounterSpec, now: float, record: str = "", key: str = "ip:a",
         cost: int = 1) -> float:
    usages, _ = store.update([(key, (spec,), (cost,), record)], key, now)
    return usages[0][0]


def check_counts_per_key(factory: StoreFactory) -> None:
    store = factory()
    spec = (60.0, False, 10)
    assert [_hit(store, spec, 1000.0 + i) for i in range(3)] == [1, 2, 3]
    assert _hit(store, spec, 1003.0, key="ip:b") == 1, "keys must not share counters"
    assert _hit(store, spec, 1004.0, cost=5) == 8, "cost weights a request"


def check_sliding_window(factory: StoreFactory) -> None:
    store = factory()
    spec = (60.0, False, 100)
    for _ in range(60):
        _hit(store, spec, 600.0)
    assert _hit(store, spec, 690.0) == 31, "half of the previous window counts halfway through"
    assert _hit(store, spec, 790.0) == 1, "nothing is left two windows later"


def check_distinct_records(factory: StoreFactory) -> None:
    store = factory()
    spec = (100.0, True, 50)
    for i in range(10):
        _hit(store, spec, 1000.0 + i, f"user:{i}")
    assert _hit(store, spec, 1010.0, "user:3") == 10, "re-reading a record is not a new one"
    assert _hit(store, spec, 1102.5) == 7, "records leave the window as they age"


def check_several_counters_in_one_call(factory: StoreFactory) -> None:
    store = factory()
    specs = ((10.0, False, 5), (600.0, True, 80))
    updates = [("ip:c", specs, (1, 1), "user:1"), ("subnet:c", ((60.0, False, 9),), (1,), "user:1")]
    usages, _ = store.update(updates, "ip:c", 50.0)
    assert usages == [(1.0, 1.0), (1.0,)]


def check_client_memory_persists(factory: StoreFactory) -> None:
    store = factory()
    _, memory = store.update([], "ip:a", 1.0)
    memory.requests = 7
    store.keep("ip:a", memory)
    _, again = store.update([], "ip:a", 2.0)
    _, other = store.update([], "ip:b", 2.0)
    assert again.requests == 7 and other.requests == 0


CHECKS = (
    check_counts_per_key,
    check_sliding_window,
    check_distinct_records,
    check_several_counters_in_one_call,
    check_client_memory_persists,
)


def check_store(factory: StoreFactory) -> None:
    for check in CHECKS:
        check(factory)
