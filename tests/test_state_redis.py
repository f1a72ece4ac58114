"""The Redis backend beyond the shared contract: script loading, round trips, TTLs, key layout,
memory writes across nodes, time-outs, and agreement with the in-memory reference; each
against a real Redis and a real Valkey."""

from __future__ import annotations

import asyncio
import datetime
import itertools
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from hypothesis import example, given, settings
from hypothesis import strategies as st
from redis.crc import key_slot
from redis_server import RedisServer, redis_server, valkey_server  # noqa: F401 - the fixtures
from servers import free_port

from scrapeshield.errors import ConfigError, StateError
from scrapeshield.policy.loader import default_policy_text
from scrapeshield.runtime import Shield
from scrapeshield.settings import RedisState, Settings
from scrapeshield.state.base import MEMORY_SIZE, KeyUpdate
from scrapeshield.state.layout import owners
from scrapeshield.state.link import Link
from scrapeshield.state.memory import MemoryStore
from scrapeshield.state.redis import RedisStore
from scrapeshield.state.resilient import ResilientStore

IP = ((10.0, False, 60), (60.0, False, 240), (600.0, True, 80), (86400.0, True, 600))
SUBNET = ((60.0, False, 1200),)
ACCOUNT = ((60.0, False, 240), (3600.0, True, 300))
_prefixes = itertools.count()


def request(n: int, ip: str = "10.0.0.1") -> list[KeyUpdate]:
    """What one profile read under the default policy touches."""
    record = f"user:{n}"
    return [(f"ip:{ip}", IP, (1, 1, 1, 1), record), ("subnet:10.0.0.0/24", SUBNET, (1,), record),
            ("account:42", ACCOUNT, (1, 1), record)]


@pytest.fixture(scope="module", params=["redis", "valkey"])
def any_server(request: pytest.FixtureRequest) -> RedisServer:
    server: RedisServer = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def server(any_server: RedisServer) -> Iterator[RedisServer]:
    any_server.client().flushall()
    any_server.client().script_flush()
    any_server.client().config_resetstat()
    yield any_server


@pytest.fixture
def stores(server: RedisServer) -> Iterator[list[RedisStore]]:
    made: list[RedisStore] = []
    yield made
    for store in made:
        store.close()


def new_store(server: RedisServer, made: list[RedisStore], **kwargs: Any) -> RedisStore:
    kwargs.setdefault("prefix", f"t{next(_prefixes)}")
    kwargs.setdefault("timeout", 5)
    store = RedisStore(server.url, **kwargs)
    made.append(store)
    return store


def test_script_loaded_once_and_reloaded_after_flush(server: RedisServer, stores: list[RedisStore]) -> None:
    a, b = new_store(server, stores), new_store(server, stores)
    for n in range(50):
        a.update(request(n), "ip:10.0.0.1", 1000.0 + n)
        b.update(request(n), "ip:10.0.0.2", 1000.0 + n)
    stats = server.commandstats()
    assert stats["script|load"] == 1, "one node loads the script; the others find it"
    assert stats["evalsha"] == 101  # one NOSCRIPT, then every call runs
    server.client().script_flush()  # as a restarted or failed-over server would be
    usages, _ = a.update(request(50), "ip:10.0.0.1", 1050.0)
    assert usages[0][2] == 51, "the counts survive the reload of the script"
    assert server.commandstats()["script|load"] == 2


def test_one_round_trip_per_decision(
    server: RedisServer, stores: list[RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every update is one send and one reply; keep() is one more send, never waited for."""
    counts = {"send": 0, "read": 0}
    send, read = Link.send, Link.read

    def counting_send(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["send"] += 1
        return send(self, *args, **kwargs)

    def counting_read(self: Any, *args: Any, **kwargs: Any) -> Any:
        counts["read"] += 1
        return read(self, *args, **kwargs)

    store = new_store(server, stores)
    store.update(request(0), "ip:10.0.0.1", 999.0)  # loads the script
    server.client().config_resetstat()
    monkeypatch.setattr(Link, "send", counting_send)
    monkeypatch.setattr(Link, "read", counting_read)
    for n in range(200):
        _, memory = store.update(request(n, f"10.0.0.{n % 7}"), f"ip:10.0.0.{n % 7}", 1000.0 + n)
        memory.requests += 1
        store.keep(f"ip:10.0.0.{n % 7}", memory)
    monkeypatch.undo()
    assert counts == {"send": 400, "read": 200}
    assert store.round_trips == 201
    stats = server.commandstats()
    assert stats["evalsha"] == 200 and stats["client|reply"] == 200


def test_asyncio_one_round_trip_and_memory_visible_at_once(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    store, other = new_store(server, stores), new_store(server, stores)
    other._layout = store._layout  # noqa: SLF001 - two nodes, one keyspace

    async def run() -> None:
        for n in range(20):
            _, memory = await store.aupdate(request(n), "ip:10.0.0.1", 1000.0 + n)
            assert memory.requests == n
            memory.requests += 1
            store.keep("ip:10.0.0.1", memory)
            if n == 0:
                await asyncio.sleep(0.05)  # the first write opens the write connection
            assert other.update([], "ip:10.0.0.1", 1100.0)[1].requests == n + 1
        await store.aclose()

    asyncio.run(run())
    assert store.round_trips == 20


def test_asyncio_decisions_waiting_together_share_one_round_trip(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    """Decisions that wait at the same moment go out in writes of four and come back in
    order: four round trips in flight together for sixteen, each still its own atomic
    script call (Redis runs the first four while the process prepares the next)."""
    store, reference = new_store(server, stores), MemoryStore()
    calls = [(request(n, f"10.0.1.{n}"), f"ip:10.0.1.{n}", 1000.0 + n) for n in range(17)]

    async def run() -> tuple[list[Any], int]:
        await store.aupdate(*calls[0])  # loads the script
        before = store.round_trips
        got = await asyncio.gather(*(store.aupdate(*call) for call in calls[1:]))
        trips = store.round_trips - before
        await store.aclose()
        return [usages for usages, _ in got], trips

    got, trips = asyncio.run(run())
    want = [reference.update(*call)[0] for call in calls][1:]
    assert got == want, "each decision gets its own answer, in the order they were asked"
    assert trips == 4
    assert server.commandstats()["evalsha"] == 18  # the first one's NOSCRIPT included


def test_asyncio_memory_writes_leave_with_the_batch(
    server: RedisServer, stores: list[RedisStore], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Concurrent decisions' memory writes go out in their batch's write, not one send each
    (one send per decision and per memory write would be 160 here), and all reach Redis."""
    store = new_store(server, stores)
    writes = {"n": 0}
    transport = asyncio.selector_events._SelectorSocketTransport  # type: ignore[attr-defined]
    write = transport.write

    def counting_write(self: Any, data: Any) -> None:
        writes["n"] += 1
        write(self, data)

    async def client(n: int) -> None:
        for step in range(5):
            _, memory = await store.aupdate(request(step, f"10.0.2.{n}"), f"ip:10.0.2.{n}", 1000.0 + step)
            memory.requests += 1
            store.keep(f"ip:10.0.2.{n}", memory)

    async def run() -> None:
        await store.aupdate(request(0), "ip:10.0.0.1", 999.0)  # loads the script, opens a connection
        monkeypatch.setattr(transport, "write", counting_write)
        await asyncio.gather(*(client(n) for n in range(16)))
        await store.aclose()
        monkeypatch.undo()

    asyncio.run(run())
    assert all(store.update([], f"ip:10.0.2.{n}", 2000.0)[1].requests == 5 for n in range(16))
    # How replies arrive in chunks decides the batches (41 seen once on a loaded machine): far
    # below one write each all the same.
    assert 5 <= writes["n"] <= 64, f"{writes['n']} socket writes for 80 decisions and 80 memory writes"


def test_memory_in_the_older_decimal_form_is_still_read(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    store = new_store(server, stores, prefix="old")
    values = [5.0, 7.5, 3.0] + [0.0] * (MEMORY_SIZE - 3)
    server.client().set("old:{ip:10.0.0.3}:m", ",".join(map(repr, values)))
    _, memory = store.update([], "ip:10.0.0.3", 10.0)
    assert memory.values == values
    memory.requests = 4
    store.keep("ip:10.0.0.3", memory)
    assert store.update([], "ip:10.0.0.3", 11.0)[1].values == [5.0, 7.5, 4.0] + [0.0] * (MEMORY_SIZE - 3)
    assert len(server.client().get("old:{ip:10.0.0.3}:m") or b"") == 1 + 8 * MEMORY_SIZE, "written packed"


def test_memory_written_by_one_node_is_read_by_the_next(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    """keep() waits for nothing, yet needs no later call to be sent: the other node sees the
    write as soon as Redis has read it (here: a moment; between real nodes a whole HTTP round
    trip passes). On one node, reads always follow its own writes (one connection, in order)."""
    a = new_store(server, stores)
    b = new_store(server, stores, prefix=a._layout.prefix.decode()[:-2])  # noqa: SLF001
    for n in range(1, 20):
        node, other = (a, b) if n % 2 else (b, a)
        _, memory = node.update([], "ip:10.0.0.9", float(n))
        memory.requests = n
        node.keep("ip:10.0.0.9", memory)
        deadline = time.monotonic() + 2
        while other.update([], "ip:10.0.0.9", float(n))[1].requests != n:
            assert time.monotonic() < deadline, "the write must reach Redis without a later call"
        _, mine = node.update([], "ip:10.0.0.9", float(n))
        assert mine.requests == n


def test_calls_sent_before_their_replies_are_read_get_their_own_answers(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    """``send`` then ``receive`` is ``update`` split in two (the engine works in between):
    calls sent one after another, each on its own connection, are answered in any order,
    with the same usages as one ``update`` after another."""
    split, whole = new_store(server, stores), new_store(server, stores)
    ips = ("10.0.0.1", "10.0.0.2")  # (no key in common: the server may run the two in any order)
    for n in range(30):
        reads = (request(n, ips[0])[:1], request(n % 3, ips[1])[:1])  # distinct counts differ
        pairs = list(zip(ips, reads, strict=True))
        calls = [split.send(updates, f"ip:{ip}", 1000.0 + n) for ip, updates in pairs]
        answers = [split.receive(call)[0] for call in reversed(calls)]
        expected = [whole.update(updates, f"ip:{ip}", 1000.0 + n)[0] for ip, updates in pairs]
        assert answers == expected[::-1]
    assert answers[1][0][2:] == (30.0, 30.0) and answers[0][0][2:] == (3.0, 3.0)
    assert split.round_trips == whole.round_trips == 60
    assert len(split._links) == 2  # noqa: SLF001 - both connections back to the idle list


def test_every_key_has_a_ttl_and_the_entity_hash_tag(server: RedisServer, stores: list[RedisStore]) -> None:
    store = new_store(server, stores, prefix="ss", idle_ttl=7200)
    store.share_sets(IP, [None] * len(IP))  # (as the engine does: the IP's two record budgets, one set)
    for n in range(30):
        _, memory = store.update(request(n), "ip:10.0.0.1", 1000.0 + n)
        store.keep("ip:10.0.0.1", memory)
    store.update([], "ip:10.0.0.2", 1031.0)  # sends the last write
    client = server.client()
    ttls = {key.decode(): client.ttl(key) for key in client.scan_iter("ss:*")}
    assert ttls == {
        "ss:{ip:10.0.0.1}:w": pytest.approx(2 * 60 + 1, abs=2),  # two of its longest windows
        "ss:{ip:10.0.0.1}:d3": pytest.approx(86401, abs=2),  # one window after the last read
        "ss:{ip:10.0.0.1}:m": pytest.approx(7200, abs=2),  # the policy's idle_ttl
        "ss:{subnet:10.0.0.0/24}:w": pytest.approx(121, abs=2),
        "ss:{account:42}:w": pytest.approx(121, abs=2),
        "ss:{account:42}:d1": pytest.approx(3601, abs=2),
    }
    for key in ttls:  # Redis Cluster: one entity, one slot; the subnet key is not the IP's
        entity = key[key.index("{") + 1: key.index("}")]
        assert key_slot(key.encode()) == key_slot(entity.encode())
    assert client.zcard("ss:{account:42}:d1") == 30


def test_fractional_windows_get_whole_second_ttls_and_the_time_is_exact(
    server: RedisServer, stores: list[RedisStore]
) -> None:
    """The TTLs the caller works out (sent to the script as decimal strings) are the script's
    former ones: two longest windows + 1 s for a window key, one window + 1 s for a record set,
    rounded up to whole seconds; and the time reaches the script (and the set's score) exact."""
    store = new_store(server, stores, prefix="frac")
    specs = ((0.5, False, 9), (2.25, True, 9), (0.75, False, 9))
    client = server.client()
    for n, now in enumerate((0.1 + 0.2, 1e-7, 1_700_000_000.0001, 123456.78901234567)):
        usages, _ = store.update([(f"ip:{n}", specs, (1, 1, 2), "r")], f"ip:{n}", now)
        assert usages == [(1.0, 1.0, 2.0)]
        assert client.zscore(f"frac:{{ip:{n}}}:d1", "r") == now
        assert 2000 < client.pttl(f"frac:{{ip:{n}}}:w") <= 3000  # ceil(2 x 0.75) + 1
        assert 3000 < client.pttl(f"frac:{{ip:{n}}}:d1") <= 4000  # ceil(2.25) + 1
    # no cost on the window counters: the window key is not written
    store.update([("ip:z", specs, (0, 1, 0), "r")], "ip:z", 5.0)
    assert client.exists("frac:{ip:z}:w") == 0 and client.exists("frac:{ip:z}:d1") == 1


_DATA_COMMANDS = {"get", "mget", "set", "expire", "zadd", "zcard", "zcount", "zremrangebyscore",
                  "zremrangebyrank"}


def test_redis_calls_inside_the_script(server: RedisServer, stores: list[RedisStore]) -> None:
    """What the script costs the server: the calls one decision makes (a guard against calls
    creeping back in: each costs about a microsecond of Redis' time on a sync decision's path)."""
    store = new_store(server, stores)
    store.share_sets(IP, [None] * len(IP))
    client = server.client()

    def calls(n: int, now: float) -> dict[str, int]:
        client.config_resetstat()
        store.update(request(n), "ip:10.0.0.1", now)
        stats = client.info("commandstats")
        return {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()
                if k.removeprefix("cmdstat_") in _DATA_COMMANDS}

    # new sets (of one: nothing to prune, every window's count known), memory read
    assert calls(1, 1000.0) == {"get": 4, "set": 3, "zadd": 2, "zcard": 2, "expire": 2}
    # a new record in sets that hold others: pruned; the IP's shorter window counted apart
    assert calls(2, 1001.0) == {"get": 4, "set": 3, "zadd": 2, "zcard": 2, "zremrangebyscore": 2,
                                "expire": 2, "zcount": 1}
    # a record read again: no growth, every distinct count from the set
    assert calls(2, 1002.0) == {"get": 4, "set": 3, "zadd": 2, "expire": 2, "zcount": 3}


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 12), st.integers(0, 40)), min_size=1,
                max_size=60))
def test_shared_sets_over_routes_give_the_memory_stores_answers(
    any_server: RedisServer, steps: list[tuple[int, int, int]]
) -> None:
    """The caller's description of an entity (sets shared by route, a set's first counter
    costing nothing on other routes, fractional windows): the memory store's usages."""
    profiles, lists = frozenset({"profile"}), frozenset({"list"})
    specs = ((0.5, False, 3), (7.5, True, 4), (30.0, True, 9), (30.0, False, 5), (12.25, True, 9),
             (3.0, True, 2))
    routes = [None, profiles, profiles, None, lists, None]
    reference = MemoryStore()
    store = RedisStore(any_server.url, prefix=f"r{next(_prefixes)}", timeout=5)
    store.share_sets(specs, routes)
    costs_by_route = {
        route: tuple(0 if r is not None and route not in r else (2 if not d else 1)
                     for (_, d, _), r in zip(specs, routes, strict=True))
        for route in ("profile", "list", "home")}
    now = 500.0
    try:
        for route, record, gap in steps:
            now += gap / 8
            name = ("profile", "list", "home")[route]
            updates: list[KeyUpdate] = [("ip:x", specs, costs_by_route[name], f"u{record}" if record else "")]
            want, _ = reference.update(updates, "ip:x", now)
            got, _ = store.update(updates, "ip:x", now)
            assert got == [pytest.approx(u, abs=1e-9) for u in want]
    finally:
        store.close()


def test_huge_keys_and_records_are_stored_as_digests(server: RedisServer, stores: list[RedisStore]) -> None:
    store = new_store(server, stores, prefix="big")
    key = "token:" + "\u00e9" * 50_000
    for n in range(3):
        usages, _ = store.update([(key, ((60.0, True, 9),), (1,), "r" * 1_000_000 + str(n))], key, 10.0)
    assert usages == [(3.0,)]
    sizes = [len(k) for k in server.client().scan_iter("big:*")]
    assert sizes and max(sizes) < 100
    assert server.client().info("memory")["used_memory"] < 50_000_000


def test_time_out_when_redis_hangs(server: RedisServer, stores: list[RedisStore]) -> None:
    store = new_store(server, stores, timeout=0.05)
    store.update(request(0), "ip:10.0.0.1", 1.0)
    assert server.process is not None
    os.kill(server.process.pid, signal.SIGSTOP)
    try:
        started = time.monotonic()
        with pytest.raises(StateError):
            store.update(request(1), "ip:10.0.0.1", 2.0)

        async def call() -> None:
            with pytest.raises(StateError):
                await store.aupdate(request(2), "ip:10.0.0.1", 3.0)
            await store.aclose()

        asyncio.run(call())
        assert time.monotonic() - started < 1.0  # two 0.05 s timeouts; margin for a loaded CI machine
    finally:
        os.kill(server.process.pid, signal.SIGCONT)
    assert store.update(request(3), "ip:10.0.0.1", 4.0)[0][0][0] >= 2, "a new connection works"


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 40), st.integers(0, 400)), min_size=1,
                max_size=60))
def test_same_answers_as_the_memory_store(
    any_server: RedisServer, steps: list[tuple[int, int, int]]
) -> None:
    """The Lua script is memory.py's arithmetic: same usages for any sequence of requests."""
    specs = ((10.0, False, 50), (60.0, False, 50), (30.0, True, 5), (120.0, True, 20))
    reference, store = MemoryStore(), RedisStore(any_server.url, prefix=f"h{next(_prefixes)}", timeout=5)
    now = 10_000.0
    try:
        for who, record, gap in steps:
            now += gap / 4  # quarter seconds: exact in binary, as the window arithmetic is
            updates: list[KeyUpdate] = [(f"ip:{who}", specs, (1, 2, 1, 1), f"user:{record}"),
                                        ("subnet:s", specs[:2], (3, 1), "")]
            want, _ = reference.update(updates, f"ip:{who}", now)
            got, _ = store.update(updates, f"ip:{who}", now)
            assert got == [pytest.approx(u, abs=1e-9) for u in want]
    finally:
        store.close()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1), st.integers(0, 40), st.integers(0, 400)), min_size=1,
                max_size=80), st.integers(0, 80))
@example([(0, 1, 0), (0, 2, 40), (0, 3, 40), (0, 4, 80)], 0)  # records that aged out of 30 s only
@example([(0, 1, 0), (0, 2, 40), (0, 3, 40), (0, 4, 80)], 3)
def test_distinct_counters_of_the_same_routes_share_one_set_with_the_same_answers(
    any_server: RedisServer, steps: list[tuple[int, int, int]], upgrade: int
) -> None:
    """One record set for the distinct counters that count the same requests: the usages are
    the memory store's (caps overflowing, records ageing out), also across the upgrade from
    one set per counter (the shared set is the longest window's own, under its own key)."""
    specs = ((10.0, False, 50), (30.0, True, 8), (120.0, True, 20), (120.0, True, 12))
    prefix = f"u{next(_prefixes)}"
    reference = MemoryStore()
    before = RedisStore(any_server.url, prefix=prefix, timeout=5)  # one set per counter
    after = RedisStore(any_server.url, prefix=prefix, timeout=5)
    after.share_sets(specs, [None, None, None, None])
    now = 10_000.0
    try:
        for n, (who, record, gap) in enumerate(steps):
            now += gap / 4
            reads = record % 5 != 0  # some requests read no record
            updates: list[KeyUpdate] = [(f"ip:{who}", specs, (1, 1, 1, 1), f"user:{record}" if reads else "")]
            want, _ = reference.update(updates, f"ip:{who}", now)
            got, _ = (before if n < upgrade else after).update(updates, f"ip:{who}", now)
            assert got == [pytest.approx(u, abs=1e-9) for u in want]
        if upgrade == 0:  # shared from the start: the window key and one set per address
            suffixes = {k.rsplit(b":", 1)[1] for k in any_server.client().scan_iter(f"{prefix}:*")}
            assert suffixes <= {b"w", b"d2", b"m"}
    finally:
        before.close()
        after.close()


def test_which_counters_share_a_record_set() -> None:
    day, hour, ten = (86400.0, True, 600), (3600.0, True, 300), (600.0, True, 80)
    burst = (10.0, False, 60)
    assert owners((burst, ten, day), [None, None, None]) == (0, 2, 2)
    assert owners((day, burst, ten, hour), [None, None, None, None]) == (0, 1, 0, 0)
    pages = frozenset({"profile-page"})
    # other routes: their own sets; the same routes named twice: one
    assert owners((ten, day, hour), [pages, None, frozenset({"profile-page"})]) == (2, 1, 2)
    # the longest window without the largest limit: its set holds fewer records than the other
    # counter's may need, so each keeps its own
    assert owners((ten, (86400.0, True, 50)), [None, None]) == (0, 1)
    store = RedisStore("redis://127.0.0.1:1/0")  # nothing is sent: the layout alone
    try:
        specs = (burst, ten, day)
        store.share_sets(specs, [None, None, None])
        command = store._layout.evalsha([("ip:1.2.3.4", specs, (1, 1, 1), "r")], b"m", 1.0)  # noqa: SLF001
        assert b"}:d2" in command and b"}:d1" not in command
    finally:
        store.close()


def test_a_shield_keeps_one_record_set_for_the_ip_profile_budgets(
    server: RedisServer, tmp_path: Path
) -> None:
    """The engine tells the store which distinct counters count the same routes (the default
    policy's 10-minute and daily per-address budgets): one sorted set per address, not two."""
    shield = Shield(Settings.resolve(data_dir=tmp_path, state_url=server.url + "?prefix=one"))
    try:
        engine = shield.engine
        for n in range(5):
            engine.decide(engine.contexts.build(1000.0 + n, "10.9.8.7", "GET", f"/api/v1/users/{n + 1}",
                                                [("host", "x"), ("user-agent", "curl/8")]))
    finally:
        shield.close()
    keys = sorted(k.decode() for k in server.client().scan_iter("one:{ip:10.9.8.7}:*"))
    sets = [k for k in keys if server.client().type(k) == b"zset"]
    assert len(sets) == 1 and server.client().zcard(sets[0]) == 5, keys


@pytest.mark.parametrize(("url", "error"), [
    ("redis://127.0.0.1:6379/0", None),
    ("valkeys://cache.internal/3?timeout=0.1&failures=5&reset=2&prefix=shield&protocol=3", None),
    ("redis://:s3cret@h:x/0", "--state 'redis://:***@h:x/0': Port could not be cast"),
    ("redis:///0", "a host (and port) is needed"),
    ("redis://h/users", "the path must be a database number"),
    ("redis://h/0?socket_timeout=9", "unknown option 'socket_timeout'"),
    ("redis://h/0?timeout=soon", "timeout='soon' is not a number"),
    ("redis://h/0?timeout=0", "timeout must be in (0, 10]"),
    ("redis://h/0?prefix=a{b}", "must be non-empty, without braces"),
    ("memcached://h", "--state must be 'memory' or a redis:// URL"),
])
def test_state_url_checked_before_anything_starts(url: str, error: str | None) -> None:
    if error is None:
        state = RedisState.parse(url)
        assert "timeout=" not in state.url and "prefix=" not in state.url
        return
    with pytest.raises(ConfigError) as raised:
        RedisState.parse(url)
    assert error in str(raised.value) and "s3cret" not in str(raised.value)


def test_shield_with_redis_state_follows_the_policy_fail_mode(
    server: RedisServer, tmp_path: Any
) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(default_policy_text())
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), state_url=server.url + "?failures=1",
                                     policy_path=str(policy)))
    try:
        store = shield.store
        assert isinstance(store, ResilientStore) and isinstance(store.primary, RedisStore)
        assert shield.engine.needs_await
        server.stop()
        ctx = shield.engine.contexts.build(shield.clock.now(), "10.1.1.1", "GET", "/", [("user-agent", "x")])
        assert shield.engine.decide(ctx).rule != "fail-closed"  # open: local limits
        policy.write_text(default_policy_text().replace("fail_mode: open", "fail_mode: closed"))
        assert shield.reload() == []
        assert shield.engine.decide(ctx).rule == "fail-closed"
    finally:
        server.start()
        shield.close()


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "cert.pem", directory / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


def test_tls_connection_sync_and_asyncio(tmp_path: Path) -> None:
    """``rediss://``: the sync link keeps the TLS socket's own time-out; both paths answer as
    over plain TCP, and a hung server still fails within the time-out."""
    cert, key = _self_signed(tmp_path)
    port = free_port()
    server = RedisServer(tmp_path, port=free_port(), extra=(
        "--tls-port", str(port), "--tls-cert-file", str(cert), "--tls-key-file", str(key),
        "--tls-ca-cert-file", str(cert), "--tls-auth-clients", "no"))
    server.start()
    store = RedisStore(f"rediss://127.0.0.1:{port}/0?ssl_cert_reqs=none", prefix="tls", timeout=0.2)
    try:
        reference = MemoryStore()
        for n in range(5):
            got, memory = store.update(request(n), "ip:10.0.0.1", 1000.0 + n)
            assert got == reference.update(request(n), "ip:10.0.0.1", 1000.0 + n)[0]
            memory.requests += 1
            store.keep("ip:10.0.0.1", memory)

        async def run() -> list[Any]:
            got = await asyncio.gather(*(store.aupdate(request(5 + n), "ip:10.0.0.1", 1005.0 + n)
                                         for n in range(4)))
            await store.aclose()
            return [usages for usages, _ in got]

        assert asyncio.run(run()) == [reference.update(request(5 + n), "ip:10.0.0.1", 1005.0 + n)[0]
                                      for n in range(4)]
        assert store.update([], "ip:10.0.0.1", 2000.0)[1].requests == 5
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(StateError):
                store.update(request(9), "ip:10.0.0.1", 2001.0)
            assert time.monotonic() - started < 2.0  # a 0.2 s time-out; margin for a loaded machine
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
    finally:
        store.close()
        server.stop()


def test_no_server_is_a_state_error_and_a_lost_write() -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="none", timeout=0.2)
    try:
        started = time.monotonic()
        with pytest.raises(StateError):
            store.update(request(0), "ip:10.0.0.1", 1.0)
        store.keep("ip:10.0.0.1", MemoryStore().update([], "ip:10.0.0.1", 1.0)[1])
        assert store.write_errors == 1
        assert time.monotonic() - started < 10  # redis-py's own connect retries, bounded
    finally:
        store.close()
