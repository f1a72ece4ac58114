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
primary and repeats only the calls that did not run. ``keep`` writes the memory with
``CLIENT REPLY SKIP`` on its node's connection and returns, as the single-server
store does (under asyncio: a task that does not hold up the decision).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio.cluster as aiocluster
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.crc import key_slot
from redis.exceptions import NoScriptError, RedisClusterException
from redis.retry import Retry

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, KeyUpdate
from scrapeshield.state.layout import SCRIPT, SHA, Layout, Result, decode, keep_command, memory_value, sizes

# Per call: the indices of the updates it carries, whether it reads the memory, its slot, its
# arguments.
_Call = tuple[list[int], bool, int, tuple[str | bytes | int, ...]]
_SHA = SHA.decode()
# What a failed cluster call raises: redis-py's errors, its cluster errors (not RedisErrors: a
# slot no node serves), a slot missing from the table while it is rebuilt, socket errors.
_FAILURES = (redis.RedisError, RedisClusterException, KeyError, OSError)
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
        self._pending: set[asyncio.Task[None]] = set()  # asyncio memory writes in flight
        self.round_trips = 0  # waits for the cluster (one per update/aupdate, all nodes at once)
        self.write_errors = 0

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        calls = self._calls(updates, client, now)
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
        self.round_trips += 1
        try:
            async with asyncio.timeout(self.timeout * 2):  # a NOSCRIPT answer costs a second trip
                cluster = await self._aclient()
                replies = await self._arun(cluster, calls)
                missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
                if missing:
                    await cluster.script_load(SCRIPT)
                    again = await self._arun(cluster, [calls[i] for i in missing])
                    for i, reply in zip(missing, again, strict=True):
                        replies[i] = reply
        except _FAILURES as exc:  # TimeoutError is an OSError
            raise StateError(f"redis cluster: {exc or type(exc).__name__}") from exc
        return self._merge(calls, replies, updates, now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        key = self._layout.memory_key(client)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send(key, memory)
            return
        if len(self._pending) >= _MAX_PENDING:  # the cluster has not answered for a while
            self.write_errors += 1
            return
        task = loop.create_task(self._aset(key, memory_value(memory)))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    def tracked_clients(self) -> int:
        """Keys on all primaries (all of them: give scrapeshield a cluster of its own)."""
        try:
            return sum(int(self.cluster.dbsize(target_nodes=node)) for node in self.cluster.get_primaries())
        except _FAILURES as exc:
            raise StateError(f"redis cluster: {exc or type(exc).__name__}") from exc

    # -- the rest ----------------------------------------------------------------------

    def close(self) -> None:
        self.cluster.close()

    async def aclose(self) -> None:
        """Wait for the memory writes in flight and close the asyncio connections."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
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

    def _send(self, key: bytes, memory: ClientMemory) -> None:
        """The memory write, on its node's connection, without waiting for a reply."""
        try:
            node = self.cluster.get_node_from_key(key)
            pool = self.cluster.get_redis_connection(node).connection_pool
            conn: Any = pool.get_connection()
        except _FAILURES:
            self.write_errors += 1
            return
        try:
            conn.send_packed_command((keep_command(key, memory, self.idle_ttl),), check_health=False)
        except _FAILURES:
            conn.disconnect()
            self.write_errors += 1
        pool.release(conn)

    async def _aclient(self) -> Any:
        loop = asyncio.get_running_loop()
        if self._acluster is None or loop is not self._aloop:  # connections belong to their loop
            self._aloop, self._pending = loop, set()
            self._acluster = aiocluster.RedisCluster.from_url(
                self.url, socket_timeout=self.timeout, socket_connect_timeout=self.timeout,
                retry=Retry(NoBackoff(), 0))
        await self._acluster.initialize()  # the slot table (a no-op once it is known)
        return self._acluster

    async def _aset(self, key: bytes, value: bytes) -> None:
        try:
            cluster = await self._aclient()
            async with asyncio.timeout(self.timeout):
                await cluster.set(key, value, ex=int(self.idle_ttl))
        except _FAILURES:
            self.write_errors += 1


def _pipeline(cluster: Any, calls: list[_Call]) -> Any:
    """The calls queued on a (sync or asyncio) cluster pipeline, each sent to its slot's node:
    routed by our slot, as redis-py would not parse EVALSHA's keys."""
    pipe = cluster.pipeline(transaction=False)
    slots = cluster.nodes_manager
    for _, _, slot, args in calls:
        pipe.execute_command(*args, target_nodes=slots.get_node_from_slot(slot))
    return pipe
