"""The contract every counter-state backend passes (the memory store and Redis alike).

Each ``check_*`` takes a factory that returns a fresh, empty store and raises
AssertionError naming the broken promise. Run them all with ``check_store``.
A store that holds asyncio connections may offer ``async aclose()``: the asyncio
check calls it before its event loop ends.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate, StateStore

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


def check_distinct_window_edge(factory: StoreFactory) -> None:
    """A record read exactly one window ago has left it, whatever this request reads."""
    for now_record in ("", "user:1", "user:9"):  # nothing, a record in the set, a new one
        store = factory()
        spec = (100.0, True, 50)
        _hit(store, spec, 1000.0, "user:0")
        _hit(store, spec, 1050.0, "user:1")
        expected = 1 if now_record != "user:9" else 2
        assert _hit(store, spec, 1100.0, now_record) == expected, f"edge, reading {now_record!r}"


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


def check_memory_per_client_when_interleaved(factory: StoreFactory) -> None:
    """As concurrent requests do: several updates before their keeps, in any order."""
    store = factory()
    clients = [f"ip:10.0.0.{i}" for i in range(4)]
    for rnd in range(3):
        seen = [store.update([(c, ((60.0, False, 99),), (1,), "")], c, 10.0 + rnd)[1] for c in clients]
        for i in reversed(range(len(clients))):
            assert seen[i].requests == rnd * (i + 1), "a client's memory must be its own, and kept"
            seen[i].requests += i + 1
            store.keep(clients[i], seen[i])


def check_distinct_capped(factory: StoreFactory) -> None:
    store = factory()
    spec = (3600.0, True, 10)
    counts = [_hit(store, spec, 100.0 + i, f"user:{i}") for i in range(100)]
    assert counts[:36] == list(range(1, 37)), "every new record counts up to the cap"
    assert set(counts[36:]) == {36.0}, "a set holds at most 2 x limit + 16 records"


def check_record_counts_only_where_it_costs(factory: StoreFactory) -> None:
    store = factory()
    specs = ((60.0, True, 50), (60.0, True, 50))
    for i in range(5):
        usages, _ = store.update([("ip:a", specs, (1, 0), f"user:{i}")], "ip:a", 10.0 + i)
    assert usages == [(5.0, 0.0)], "a counter whose cost is 0 does not take the record"


def check_changed_counters_under_a_key(factory: StoreFactory) -> None:
    """A policy reload may change the counters kept under a key; nothing breaks."""
    store = factory()
    _hit(store, (60.0, False, 9), 10.0)
    usages, _ = store.update([("ip:a", ((60.0, False, 9), (10.0, False, 9)), (1, 1), "")], "ip:a", 11.0)
    assert len(usages[0]) == 2 and all(u >= 1 for u in usages[0])
    assert _hit(store, (60.0, True, 9), 12.0, "user:1") == 1


def check_garbage_keys_and_records(factory: StoreFactory) -> None:
    """Whatever a client sends ends up in keys and records: none of it may break a store."""
    store = factory()
    odd = ["ip:\u00e9\u00e8\u4e2d\U0001f600", "account:{x}|y z,1", "token:" + "\u00ff" * 5000,
           "session:\x00\r\n*3\r\n$4\r\nPING", "fingerprint:\udcff", "ip:"]
    spec = (3600.0, True, 1000)
    for round_ in range(2):
        for i, key in enumerate(odd):
            for record in (f"user:{i}", "\u4e2d|\x00 ,{}", "x" * 100_000, "\udcff"):
                _hit(store, spec, 100.0 + round_, record, key=key)
    for key in odd:
        assert _hit(store, spec, 200.0, key=key) == 4, f"records under {key[:20]!r} must stay apart"
        _, memory = store.update([], key, 200.0)
        memory.requests = 3
        store.keep(key, memory)
        assert store.update([], key, 201.0)[1].requests == 3


def check_asyncio_matches_sync(factory: StoreFactory) -> None:
    specs = ((10.0, False, 5), (600.0, True, 80))
    script = [(f"ip:{i % 3}", f"user:{i % 7}", 1000.0 + i * 1.7) for i in range(40)]

    def updates(key: str, record: str) -> Sequence[KeyUpdate]:
        return [(key, specs, (1, 1), record), ("subnet:x", ((60.0, False, 9),), (2,), record)]

    def step(memory: ClientMemory) -> ClientMemory:
        memory.requests += 1
        return memory

    sync = factory()
    expected = []
    for key, record, now in script:
        usages, memory = sync.update(updates(key, record), key, now)
        expected.append((usages, memory.requests))
        sync.keep(key, step(memory))

    async def run() -> list[tuple[list[tuple[float, ...]], int]]:
        store = factory()
        got = []
        for key, record, now in script:
            usages, memory = await store.aupdate(updates(key, record), key, now)
            got.append((usages, memory.requests))
            store.keep(key, step(memory))
        aclose = getattr(store, "aclose", None)
        if aclose is not None:
            await aclose()
        return got

    assert asyncio.run(run()) == expected, "aupdate must answer exactly as update does"


CHECKS = (
    check_counts_per_key,
    check_sliding_window,
    check_distinct_records,
    check_distinct_window_edge,
    check_several_counters_in_one_call,
    check_client_memory_persists,
    check_memory_per_client_when_interleaved,
    check_distinct_capped,
    check_record_counts_only_where_it_costs,
    check_changed_counters_under_a_key,
    check_garbage_keys_and_records,
    check_asyncio_matches_sync,
)


def check_store(factory: StoreFactory) -> None:
    for check in CHECKS:
        check(factory)
