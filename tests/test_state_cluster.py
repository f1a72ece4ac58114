"""The Cluster backend on a real three-master Redis Cluster: per-slot calls, one wait per
decision, NOSCRIPT on one node, a node down and back, and the shield on ``redis+cluster://``."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Iterator
from typing import Any

import pytest
from redis.crc import key_slot
from redis_server import RedisCluster, _cluster_ready, redis_cluster  # noqa: F401 - the fixture

from scrapeshield.errors import ConfigError, StateError
from scrapeshield.runtime import Shield
from scrapeshield.settings import RedisState, Settings
from scrapeshield.state.base import KeyUpdate
from scrapeshield.state.cluster import ClusterStore
from scrapeshield.state.resilient import ResilientStore

IP = ((10.0, False, 60), (600.0, True, 80))
_prefixes = itertools.count()


@pytest.fixture
def cluster(redis_cluster: RedisCluster) -> Iterator[RedisCluster]:  # noqa: F811
    redis_cluster.flushall()
    for node in redis_cluster.nodes:
        node.client().config_resetstat()
    yield redis_cluster


@pytest.fixture
def store(cluster: RedisCluster) -> Iterator[ClusterStore]:
    made = ClusterStore(cluster.url, prefix=f"k{next(_prefixes)}", timeout=2)
    yield made
    made.close()


def owner(cluster: RedisCluster, key: bytes) -> int:
    """Which node (0-2) serves the key's slot (the fixture gives each a third of the slots)."""
    return min(key_slot(key) // (16384 // 3), 2)


def spread(store: ClusterStore, cluster: RedisCluster) -> list[str]:
    """Entity keys that land on three different nodes."""
    found: dict[int, str] = {}
    for n in range(1000):
        key = f"subnet:10.{n}.0.0/24"
        found.setdefault(owner(cluster, store._layout.window_key(key)), key)  # noqa: SLF001
        if len(found) == 3:
            return list(found.values())
    raise AssertionError("no spread found")


def updates(keys: list[str], record: str) -> list[KeyUpdate]:
    return [(key, IP, (1, 1), record) for key in keys]


def test_one_decision_over_three_nodes_counts_each_entity_on_its_node(
    cluster: RedisCluster, store: ClusterStore
) -> None:
    keys = spread(store, cluster)
    for n in range(5):
        usages, memory = store.update(updates(keys, f"user:{n % 3}"), keys[0], 100.0 + n)
        memory.requests += 1
        store.keep(keys[0], memory)
    assert usages == [(5.0, 3.0)] * 3
    assert store.update([], keys[0], 106.0)[1].requests == 5, "the memory went to its node"
    assert store.round_trips == 6
    calls = [int(node.client().info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0))
             for node in cluster.nodes]
    assert all(c >= 5 for c in calls), f"every node ran its entities' script: {calls}"
    for node in cluster.nodes:  # each call goes straight to its slot's node: no key look-up, no redirection
        assert "cmdstat_command|getkeys" not in node.client().info("commandstats")
        assert "errorstat_MOVED" not in node.client().info("errorstats")
    holders = set()
    for key in keys:  # each entity's keys on the node that serves its slot
        window = store._layout.window_key(key)  # noqa: SLF001
        assert cluster.nodes[owner(cluster, window)].client().exists(window)
        holders.add(owner(cluster, window))
    assert holders == {0, 1, 2}
    assert store.tracked_clients() == cluster.dbsize()


def test_script_missing_on_one_node_is_loaded_and_only_the_missing_calls_repeat(
    cluster: RedisCluster, store: ClusterStore
) -> None:
    keys = spread(store, cluster)
    store.update(updates(keys, "user:1"), keys[0], 10.0)
    cluster.nodes[1].client().script_flush()  # as a restarted or new node would be
    usages, _ = store.update(updates(keys, "user:2"), keys[0], 11.0)
    assert usages == [(2.0, 2.0)] * 3, "each entity counted once, the repeated call included"


def test_asyncio_over_three_nodes(cluster: RedisCluster, store: ClusterStore) -> None:
    keys = spread(store, cluster)

    async def run() -> list[list[tuple[float, ...]]]:
        got = []
        for n in range(4):
            usages, memory = await store.aupdate(updates(keys, f"user:{n}"), keys[1], 50.0 + n)
            memory.requests += 1
            store.keep(keys[1], memory)
            got.append(usages)
        await store.aclose()
        return got

    assert asyncio.run(run())[-1] == [(4.0, 4.0)] * 3
    assert store.update([], keys[1], 60.0)[1].requests == 4


def test_asyncio_decisions_waiting_together_share_one_pipeline(
    cluster: RedisCluster, store: ClusterStore
) -> None:
    """Sixteen decisions queued in one turn of the event loop, over three nodes: one round trip,
    each its own answer, and the memory writes of the turn go with the next batch."""
    keys = spread(store, cluster)
    clients = [f"ip:10.1.0.{i}" for i in range(16)]

    async def one(i: int) -> tuple[list[tuple[float, ...]], int]:
        usages, memory = await store.aupdate(updates(keys, f"user:{i}"), clients[i], 70.0)
        memory.requests = i + 1
        store.keep(clients[i], memory)
        return usages, memory.requests

    async def run() -> list[tuple[list[tuple[float, ...]], int]]:
        got = await asyncio.gather(*(one(i) for i in range(16)))
        await store.aclose()
        return got

    got = asyncio.run(run())
    assert store.round_trips == 1, "decisions waiting at the same moment share one round trip"
    # One after the other, as the script calls ran on each node: counts 1..16 on every entity.
    for key_index in range(3):
        assert sorted(usages[key_index][0] for usages, _ in got) == [float(n) for n in range(1, 17)]
    for i, client in enumerate(clients):
        assert store.update([], client, 71.0)[1].requests == i + 1, "every memory write arrived"


def test_node_down_fails_fast_and_the_store_recovers_when_it_is_back(
    cluster: RedisCluster, store: ClusterStore
) -> None:
    keys = spread(store, cluster)
    store.update(updates(keys, "user:1"), keys[0], 10.0)
    quick = ClusterStore(cluster.url, prefix=store._layout.prefix.decode()[:-2], timeout=0.2)  # noqa: SLF001
    try:
        cluster.nodes[2].stop()
        started = time.monotonic()
        with pytest.raises(StateError):
            quick.update(updates(keys, "user:2"), keys[0], 11.0)
        assert time.monotonic() - started < 3
    finally:
        cluster.nodes[2].start()  # its nodes.conf brings it back with its slots (empty: no persistence)
        deadline = time.monotonic() + 30
        while not all(_cluster_ready(node.client()) for node in cluster.nodes):
            assert time.monotonic() < deadline, "the cluster did not heal"
            time.sleep(0.05)
    deadline = time.monotonic() + 10
    while True:  # the client finds the node again (a reconnect, maybe a topology refresh)
        try:
            usages, _ = quick.update(updates(keys, "user:3"), keys[0], 12.0)
            break
        except StateError:
            assert time.monotonic() < deadline, "the store did not recover"
            time.sleep(0.05)
    for key, used in zip(keys, usages, strict=True):
        if owner(cluster, store._layout.window_key(key)) == 2:  # noqa: SLF001
            assert used == (1.0, 1.0), "the restarted node came back empty (no persistence here)"
        else:  # kept; the failed decision may have counted where its call did reach a node
            assert used in ((2.0, 2.0), (3.0, 3.0)), "the nodes that stayed up kept their counts"
    quick.close()


def test_shield_on_a_cluster_url(cluster: RedisCluster, tmp_path: Any) -> None:
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), state_url=cluster.url + "?timeout=2"))
    try:
        assert isinstance(shield.store, ResilientStore) and isinstance(shield.store.primary, ClusterStore)
        engine = shield.engine
        for n in range(300):
            ctx = engine.contexts.build(1000.0 + n * 0.01, "10.9.9.9", "GET", f"/api/v1/users/{n}",
                                        [("user-agent", "python-requests/2.31")])
            decision = engine.decide(ctx)
        assert decision.action.value != "allow", "a naive scraper is stopped on the cluster too"
        assert shield.store.fallback_decisions == 0
        assert cluster.dbsize() > 0
    finally:
        shield.close()


@pytest.mark.parametrize(("url", "error"), [
    ("redis+cluster://10.0.0.5:7000", None),
    ("valkeys+cluster://cache.internal:6379/0?prefix=shield", None),
    ("redis+cluster://10.0.0.5:7000/2", "a Redis Cluster has database 0 only"),
])
def test_cluster_url(url: str, error: str | None) -> None:
    if error is None:
        assert RedisState.parse(url).url.split("://")[0].endswith("+cluster")
        return
    with pytest.raises(ConfigError, match=error):
        RedisState.parse(url)


def test_events_stream_on_a_cluster(cluster: RedisCluster, tmp_path: Any) -> None:
    """The events stream is one key: a node's recorder publishes to it and a consumer writes
    each event once to the database, through the cluster client the cluster URL gives."""
    from scrapeshield.clock import ManualClock
    from scrapeshield.db.store import Database
    from scrapeshield.events import EventRecorder, Pseudonymiser
    from scrapeshield.events_stream import StreamConsumer, StreamPublisher, redis_client
    from scrapeshield.policy.loader import parse_policy
    from scrapeshield.types import Action, Decision, RequestContext

    client = redis_client(cluster.url, block_ms=100)
    stream = "k:events"
    recorder = EventRecorder(Database(f"sqlite:///{tmp_path / 'node.db'}"), parse_policy(""), ManualClock(),
                             Pseudonymiser(b"k" * 32), sink=StreamPublisher(client, stream=stream))
    target = Database(f"sqlite:///{tmp_path / 'central.db'}")
    consumer = StreamConsumer(client, target, name="c", stream=stream, block_ms=100)
    block = Decision(Action.BLOCK, 90, ("http-library",), "test")
    for n in range(200):
        recorder(RequestContext(
            ts=1_700_000_000.0 + n, ip=f"203.0.113.{n % 250}", network="203.0.113.0/24", scheme="http",
            method="GET", path=f"/api/v1/users/{n}", route="profile_api", record=f"user:{n}", headers=(),
            user_agent="curl/8.5.0", account="", session="", token="", fingerprint="f", tls_fingerprint="",
            referer="", pass_cookie="", is_asset=False, cost=1, host="", client_hints=None,
            header_names=()), block)
    recorder.close()
    try:
        deadline = time.monotonic() + 20
        while target.count_events() < 200:
            assert time.monotonic() < deadline, f"{target.count_events()} of 200 events arrived"
            consumer.step()
        assert target.count_events() == 200 and consumer.errors == 0
    finally:
        recorder.db.close()
        target.close()
        client.close()
