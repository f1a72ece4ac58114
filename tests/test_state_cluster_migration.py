"""A slot of a real three-master Redis Cluster moves to another node while decisions run
on an entity that lives in it: MIGRATING/IMPORTING, keys moved in batches (as
``redis-cli --cluster reshard`` does), then the slot handed over. Every decision is
answered (ASK, TRYAGAIN and MOVED followed), no count is lost or doubled, and the
client's memory written meanwhile is not lost either; sync and asyncio.

A cluster of its own (module scope): the moves change who serves a slot, which the other
cluster tests' slot arithmetic assumes fixed.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest
import redis
from redis.crc import key_slot
from redis_server import RedisCluster, redis_cluster  # noqa: F401 - the fixture

from scrapeshield.errors import StateError
from scrapeshield.state.base import CounterSpec, KeyUpdate
from scrapeshield.state.cluster import ClusterStore

REQUESTS_AND_RECORDS = ((3600.0, False, 1_000_000), (3600.0, True, 1_000_000))


@pytest.fixture
def store(redis_cluster: RedisCluster) -> Iterator[ClusterStore]:  # noqa: F811
    made = ClusterStore(redis_cluster.url, prefix="mig", timeout=2)
    yield made
    made.close()


class Decisions:
    """Decisions on one entity (its counts, and its client's memory in the same slot)."""

    def __init__(self, store: ClusterStore, entity: str, specs: tuple[CounterSpec, ...]) -> None:
        self.store, self.entity, self.specs = store, entity, specs
        self.made = self.failed = 0

    def one(self) -> None:
        costs = (1, 1) + (0,) * (len(self.specs) - 2)
        update: list[KeyUpdate] = [(self.entity, self.specs, costs, f"user:{self.made}")]
        try:
            _, memory = self.store.update(update, self.entity, 1000.0 + self.made * 0.01)
        except StateError:
            self.failed += 1
            return
        self.made += 1
        memory.requests += 1
        self.store.keep(self.entity, memory)

    def counted(self) -> tuple[float, ...]:
        update: list[KeyUpdate] = [(self.entity, self.specs, (0,) * len(self.specs), "")]
        usages, _ = self.store.update(update, self.entity, 1000.0 + self.made * 0.01)
        return usages[0][:2]


def test_ask_and_moved_followed_while_a_slot_moves_and_no_count_is_lost(
    redis_cluster: RedisCluster, store: ClusterStore  # noqa: F811
) -> None:
    cluster = redis_cluster
    decisions = Decisions(store, "ip:10.7.7.7", REQUESTS_AND_RECORDS)
    slot, source, target = _plan(cluster, store, decisions.entity)
    _fill(cluster, store, decisions.entity, source, 300)  # so that the move takes a while
    for _ in range(20):
        decisions.one()
    # The entity's own keys leave first, together: every call after that meets ASK.
    layout = store._layout  # noqa: SLF001
    own = (layout.window_key(decisions.entity), layout.window_key(decisions.entity)[:-1] + b"d1",
           layout.memory_key(decisions.entity))
    move = Move(cluster, slot, source, target, batch=10, pause=0.003, first=own)
    move.thread.start()
    during = 0
    deadline = time.monotonic() + 60
    while not move.done.is_set() and time.monotonic() < deadline:
        decisions.one()
        during += 1
    move.thread.join(timeout=10)
    for _ in range(20):
        decisions.one()

    assert move.done.is_set() and _serves(cluster.nodes[target].client(), slot), "the slot moved"
    assert decisions.failed == 0, f"{decisions.failed} decisions failed while the slot moved"
    assert during >= 5, "decisions ran while the slot was moving"
    assert decisions.counted() == (decisions.made, decisions.made), "every decision counted once"
    assert store.update([], decisions.entity, 2000.0)[1].requests == decisions.made, "no memory write lost"
    assert cluster.nodes[source].client().execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert _errors(cluster, "ASK") > 0, "calls met the half-moved slot and were redirected"
    assert _errors(cluster, "MOVED") > 0, "the first call after the hand-over was redirected"


def test_a_call_on_a_key_not_made_yet_waits_for_the_move_and_counts_once(
    redis_cluster: RedisCluster, store: ClusterStore  # noqa: F811
) -> None:
    """While a slot moves, Redis answers TRYAGAIN to a script whose keys exist only in part
    (here a distinct counter whose record set nobody has made): the call is repeated until
    the slot is handed over, then runs once on the new node."""
    cluster = redis_cluster
    specs = (*REQUESTS_AND_RECORDS, (60.0, True, 5))  # its record set is never written
    decisions = Decisions(store, "ip:10.8.8.8", specs)
    slot, source, target = _plan(cluster, store, decisions.entity)
    for _ in range(10):
        decisions.one()
    tryagain = _errors(cluster, "TRYAGAIN")
    move = Move(cluster, slot, source, target, batch=10, pause=0.01)
    move.thread.start()
    assert move.marked.wait(10)
    decisions.one()  # the slot is migrating, its keys not moved yet
    move.thread.join(timeout=10)
    decisions.one()

    assert move.done.is_set() and _serves(cluster.nodes[target].client(), slot), "the slot moved"
    assert decisions.failed == 0 and decisions.made == 12
    assert decisions.counted() == (12.0, 12.0), "counted once, on the new node"
    assert _errors(cluster, "TRYAGAIN") > tryagain, "the call met the half-moved slot"


def _plan(cluster: RedisCluster, store: ClusterStore, entity: str) -> tuple[int, int, int]:
    """The entity's slot, the node serving it, and the node it will move to."""
    slot = key_slot(store._layout.window_key(entity))  # noqa: SLF001
    source = next(i for i, node in enumerate(cluster.nodes) if _serves(node.client(), slot))
    return slot, source, (source + 1) % 3


def _fill(cluster: RedisCluster, store: ClusterStore, entity: str, source: int, count: int) -> None:
    window = store._layout.window_key(entity)  # noqa: SLF001
    tag = window[: window.index(b"}") + 1]
    client = cluster.nodes[source].client()
    for i in range(count):
        client.set(tag + b":fill:%d" % i, b"x" * 64)


class Move:
    """What a resharding tool does for one slot, in a thread: mark it migrating (``marked``
    is set then), move ``first`` together, then the other keys ``batch`` at a time with a
    pause before each batch (decisions run meanwhile), hand the slot over (``done``)."""

    def __init__(self, cluster: RedisCluster, slot: int, source: int, target: int, *, batch: int,
                 pause: float, first: tuple[bytes, ...] = ()) -> None:
        self.cluster, self.slot, self.source, self.target = cluster, slot, source, target
        self.batch, self.pause, self.first = batch, pause, first
        self.marked, self.done = threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        src, dst = self.cluster.nodes[self.source].client(), self.cluster.nodes[self.target].client()
        src_id, dst_id, port = _node_id(src), _node_id(dst), self.cluster.nodes[self.target].port
        try:
            dst.execute_command("CLUSTER", "SETSLOT", self.slot, "IMPORTING", src_id)
            src.execute_command("CLUSTER", "SETSLOT", self.slot, "MIGRATING", dst_id)
            self.marked.set()
            if self.first:
                src.execute_command("MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *self.first)
            for _ in range(1000):  # bounded: a few hundred keys at most
                time.sleep(self.pause)
                keys = src.execute_command("CLUSTER", "GETKEYSINSLOT", self.slot, self.batch)
                if not keys:
                    break
                src.execute_command("MIGRATE", "127.0.0.1", port, "", 0, 5000, "KEYS", *keys)
            for node in self.cluster.nodes:
                node.client().execute_command("CLUSTER", "SETSLOT", self.slot, "NODE", dst_id)
        finally:
            self.marked.set()
            self.done.set()


def _node_id(client: redis.Redis) -> str:
    return str(client.execute_command("CLUSTER", "MYID").decode())


def _serves(client: redis.Redis, slot: int) -> bool:
    """Whether this node's own view says it serves the slot."""
    me = _node_id(client)
    for start, end, *nodes in client.execute_command("CLUSTER", "SLOTS"):
        if start <= slot <= end:
            return bool(nodes) and nodes[0][2].decode() == me
    return False


def _errors(cluster: RedisCluster, kind: str) -> int:
    """How many ``kind`` error replies the nodes have given (INFO errorstats)."""
    return sum(int(node.client().info("errorstats").get(f"errorstat_{kind}", {}).get("count", 0))
               for node in cluster.nodes)


def test_asyncio_decisions_follow_a_moving_slot_and_no_count_is_lost(
    redis_cluster: RedisCluster, store: ClusterStore  # noqa: F811
) -> None:
    cluster = redis_cluster
    decisions = Decisions(store, "ip:10.9.9.9", REQUESTS_AND_RECORDS)
    slot, source, target = _plan(cluster, store, decisions.entity)
    _fill(cluster, store, decisions.entity, source, 300)
    layout = store._layout  # noqa: SLF001
    own = (layout.window_key(decisions.entity), layout.window_key(decisions.entity)[:-1] + b"d1",
           layout.memory_key(decisions.entity))
    move = Move(cluster, slot, source, target, batch=10, pause=0.003, first=own)
    made = failed = during = 0
    asks = _errors(cluster, "ASK")

    async def one() -> None:
        nonlocal made, failed
        update: list[KeyUpdate] = [(decisions.entity, REQUESTS_AND_RECORDS, (1, 1), f"user:{made}")]
        try:
            _, memory = await store.aupdate(update, decisions.entity, 1000.0 + made * 0.01)
        except StateError:
            failed += 1
            return
        made += 1
        memory.requests += 1
        store.keep(decisions.entity, memory)

    async def run() -> None:
        nonlocal during
        for _ in range(20):
            await one()
        move.thread.start()
        deadline = time.monotonic() + 60
        while not move.done.is_set() and time.monotonic() < deadline:
            await one()
            during += 1
        move.thread.join(timeout=10)
        for _ in range(20):
            await one()
        await store.aclose()

    asyncio.run(run())
    assert move.done.is_set() and _serves(cluster.nodes[target].client(), slot), "the slot moved"
    assert failed == 0, f"{failed} decisions failed while the slot moved"
    assert during >= 5, "decisions ran while the slot was moving"
    decisions.made = made
    assert decisions.counted() == (made, made), "every decision counted once"
    assert store.update([], decisions.entity, 2000.0)[1].requests == made, "no memory write lost"
    assert _errors(cluster, "ASK") > asks, "calls met the half-moved slot and were redirected"
