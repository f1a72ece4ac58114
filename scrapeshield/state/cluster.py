"""Counter state on a Redis (or Valkey) Cluster: ``--state redis+cluster://host:port``.

The keys are those of ``redis.py`` (``ss:{ip:1.2.3.4}:w``): every key of one entity
carries the entity's hash tag, so an entity lives in one slot, and the script (which
takes any number of entities) runs once per slot a request touches, with the client's
memory key added to the call of its own slot (or to a call of its own). The calls go
out as one pipeline per node, all nodes written before any is read: one round trip of
waiting per decision, however many nodes answer it. Each call is atomic for its slot,
which is all a counter needs: no limit spans two entities.

redis-py's cluster client owns the topology (slot table, MOVED/ASK redirections,
reconnects); a NOSCRIPT answer (a new or restarted node) loads the script on every
primary and repeats only the calls that did not run. ``keep`` writes the memory on its
node's write connection and returns, as the single-server store does; but the write is
answered, its reply read before the store's next call, so that a write redirected while
a slot moves is made again where the slot went (``cluster_writes.py``).

Under asyncio, as the single-server store does, the decisions that wait at the same
moment share a round trip: each turn of the event loop's script calls (and the memory
writes made meanwhile, which go first, so that a client's next call on a node reads
its last write) leave in one pipeline, one write per node. Each call is still its
own; 16 concurrent decisions cost about one round trip, and far less client CPU than
a pipeline each (redis-py's cluster pipeline costs more than its round trip).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.asyncio.cluster as aiocluster
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError
from redis.retry import Retry

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate
from scrapeshield.state.cluster_writes import FAILURES as _FAILURES
from scrapeshield.state.cluster_writes import MemoryWrites
from scrapeshield.state.layout import SCRIPT, SHA, Layout, Result, decode, memory_value, sizes

# Per call: the indices of the updates it carries, whether it reads the memory, its slot, its
# arguments.
_Call = tuple[list[int], bool, int, tuple[str | bytes | int, ...]]
_SHA = SHA.decode()
_MAX_PENDING = 10_000


def is_cluster_url(url: str) -> bool:
    return url.split("://", 1)[0].endswith("+cluster")


def plain_url(url: str) -> str:
    """The URL redis-py knows: ``valkey+cluster://`` → ``redis://``, ``rediss+cluster://`` → ``rediss://``."""
    scheme, rest = url.split("://", 1)
    scheme = scheme.removesuffix("+cluster").replace("valkey", "redis", 1)
    return f"{scheme}://{rest}"


class ClusterStore:
    does_io = True

    def __init__(
        self, url: str, *, prefix: str = "ss", idle_ttl: float = 3600.0, timeout: float = 0.05,
    ) -> None:
        self.url = plain_url(url)
        self.timeout = timeout
        self.idle_ttl = b"%d" % max(1, round(idle_ttl))
        self._layout = Layout(prefix)
        # No retries of its own: the circuit breaker (ResilientStore) decides what a failure means.
        self.cluster: Any = RedisCluster.from_url(  # untyped in redis-py: Any
            self.url, socket_timeout=timeout, socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0), require_full_coverage=True)
        self._acluster: Any = None
        self._aloop: asyncio.AbstractEventLoop | None = None
        # asyncio: the decisions and memory writes of this turn of the event loop, whether their
        # batch is scheduled, and the batches in flight
        self._queue: list[tuple[list[_Call], asyncio.Future[list[Any]]]] = []
        self._writes: list[tuple[bytes, bytes]] = []
        self._scheduled = False
        self._batches: set[asyncio.Task[None]] = set()
        self._writes_sync = MemoryWrites(self.cluster, self.idle_ttl)
        self.round_trips = 0  # waits for the cluster (sync: one per update; asyncio: per batch)
        self._write_errors = 0  # asyncio memory writes lost (sync ones: ``MemoryWrites``)

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        calls = self._calls(updates, client, now)
        self._writes_sync.settle()
        self.round_trips += 1
        try:
            replies = self._run(calls)
            missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
            if missing:  # a node without the script: load it everywhere, repeat what did not run
                self.cluster.script_load(SCRIPT)
                again = self._run([calls[i] for i in missing])
                for i, reply in zip(missing, again, strict=True):
                    replies[i] = reply
        except _FAILURES as exc:
            raise StateError(f"redis cluster: {exc or type(exc).__name__}") from exc
        return self._merge(calls, replies, updates, now)

    async def aupdate(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        calls = self._calls(updates, client, now)
        loop = asyncio.get_running_loop()
        self._on_loop(loop)
        waiter: asyncio.Future[list[Any]] = loop.create_future()
        self._queue.append((calls, waiter))
        self._schedule(loop)
        return self._merge(calls, await waiter, updates, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        key = self._layout.memory_key(client)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._writes_sync.send(key, memory)
            return
        self._on_loop(loop)
        if len(self._writes) >= _MAX_PENDING:  # the cluster has not answered for a while
            self._write_errors += 1
            return
        self._writes.append((key, memory_value(memory)))  # leaves with this turn's batch
        self._schedule(loop)

    def share_sets(self, specs: tuple[CounterSpec, ...], routes: Sequence[frozenset[str] | None]) -> None:
        """Distinct counters that count the same routes keep one record set (the engine says
        which, per policy: ``layout.Layout.share_sets``)."""
        self._layout.share_sets(specs, routes)

    def tracked_clients(self) -> int:
        """Keys on all primaries (all of them: give scrapeshield a cluster of its own)."""
        try:
            return sum(int(self.cluster.dbsize(target_nodes=node)) for node in self.cluster.get_primaries())
        except _FAILURES as exc:
            raise StateError(f"redis cluster: {exc or type(exc).__name__}") from exc

    @property
    def write_errors(self) -> int:
        """Memory writes lost (their node failed or refused them)."""
        return self._write_errors + self._writes_sync.errors

    # -- the rest ----------------------------------------------------------------------

    def close(self) -> None:
        self._writes_sync.close()
        self.cluster.close()

    async def aclose(self) -> None:
        """Send what is queued, wait for the batches in flight, close the asyncio connections."""
        if self._queue or self._writes:
            self._dispatch()
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
        if self._acluster is not None:
            cluster, self._acluster = self._acluster, None
            await cluster.aclose()

    def _calls(self, updates: Sequence[KeyUpdate], client: str, now: float) -> list[_Call]:
        """One script call per slot; the memory key goes with its slot's call."""
        layout = self._layout
        memory_key = layout.memory_key(client)
        memory_slot = key_slot(memory_key)
        slots: dict[int, list[int]] = {memory_slot: []}
        for i, update in enumerate(updates):
            slots.setdefault(key_slot(layout.window_key(update[0])), []).append(i)
        calls: list[_Call] = []
        for slot, indices in slots.items():
            if not indices and slot != memory_slot:
                continue
            with_memory = slot == memory_slot
            keys, argv = layout.script_args(
                [updates[i] for i in indices], memory_key if with_memory else None, now)
            calls.append((indices, with_memory, slot, ("EVALSHA", _SHA, len(keys), *keys, *argv)))
        return calls

    def _run(self, calls: list[_Call]) -> list[Any]:
        return list(_pipeline(self.cluster, calls).execute(raise_on_error=False))

    @staticmethod
    async def _arun(cluster: Any, calls: list[_Call]) -> list[Any]:
        return list(await _pipeline(cluster, calls).execute(raise_on_error=False))

    @staticmethod
    def _merge(calls: list[_Call], replies: list[Any], updates: Sequence[KeyUpdate], now: float) -> Result:
        usages: list[tuple[float, ...]] = [()] * len(updates)
        memory: ClientMemory | None = None
        for (indices, with_memory, _, _), reply in zip(calls, replies, strict=True):
            if isinstance(reply, Exception):
                raise StateError(f"redis cluster: {reply}")
            got, remembered = decode(reply, sizes([updates[i] for i in indices]), now)
            for i, used in zip(indices, got, strict=True):
                usages[i] = used
            if with_memory:
                memory = remembered
        return usages, memory if memory is not None else ClientMemory(now)

    def _on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._aloop:  # connections and queues belong to the loop that made them
            self._aloop, self._acluster, self._queue, self._writes = loop, None, [], []
            self._scheduled, self._batches = False, set()

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        """The first call or write of this turn of the event loop schedules the turn's batch."""
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """Send this turn's decisions and memory writes: one pipeline, one round trip for all."""
        batch, writes, self._queue, self._writes, self._scheduled = self._queue, self._writes, [], [], False
        if batch or writes:
            task = asyncio.get_running_loop().create_task(self._exchange(batch, writes))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _exchange(
        self, batch: list[tuple[list[_Call], asyncio.Future[list[Any]]]], writes: list[tuple[bytes, bytes]]
    ) -> None:
        calls = [call for own, _ in batch for call in own]
        self.round_trips += bool(batch)
        try:
            async with asyncio.timeout(self.timeout * 2):  # a NOSCRIPT answer costs a second trip
                cluster = await self._aclient()
                # The writes first: on its node, a memory write goes before a later call that reads it.
                pipe = cluster.pipeline(transaction=False)
                for key, value in writes:
                    pipe.set(key, value, ex=int(self.idle_ttl))
                replies = list(await _queue(pipe, cluster, calls).execute(raise_on_error=False))
                self._write_errors += sum(isinstance(r, Exception) for r in replies[: len(writes)])
                del replies[: len(writes)]
                missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
                if missing:
                    await cluster.script_load(SCRIPT)
                    again = await self._arun(cluster, [calls[i] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
        except BaseException as exc:  # whatever it is, no decision of the batch may wait forever
            failure = StateError(f"redis cluster: {exc or type(exc).__name__}")
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(failure)
            self._write_errors += len(writes)
            if not isinstance(exc, Exception):  # cancelled, or the process is ending
                raise
            return
        start = 0
        for own, waiter in batch:
            if not waiter.done():  # its caller may have gone away
                waiter.set_result(replies[start : start + len(own)])
            start += len(own)

    async def _aclient(self) -> Any:
        if self._acluster is None:
            self._acluster = aiocluster.RedisCluster.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0))
        await self._acluster.initialize()  # the slot table (a no-op once it is known)
        return self._acluster


def _pipeline(cluster: Any, calls: list[_Call]) -> Any:
    """The calls queued on a new (sync or asyncio) cluster pipeline."""
    return _queue(cluster.pipeline(transaction=False), cluster, calls)


def _queue(pipe: Any, cluster: Any, calls: list[_Call]) -> Any:
    """The calls queued on a cluster pipeline, each sent to its slot's node: routed by our slot,
    as redis-py would not parse EVALSHA's keys."""
    slots = cluster.nodes_manager
    for _, _, slot, args in calls:
        pipe.execute_command(*args, target_nodes=slots.get_node_from_slot(slot))
    return pipe
