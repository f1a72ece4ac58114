"""The Cluster store's sync memory writes: sent without waiting, answered all the same.

Not ``CLIENT REPLY SKIP`` as on one server: while a slot moves, its node answers a write
with an ASK or MOVED redirection, which a skipped reply would drop (and every write to
that slot with it until the move ends: in ``tests/test_state_cluster_migration.py``, 41
of 390 increments of a client's memory were kept). Each node's writes go on a connection
of their own; their replies are read before the store's next call (by then they have
arrived: no wait), and a redirected write is made again through the cluster client,
which follows the redirection (a round trip, only while a slot moves), so that the next
call reads it wherever the slot is.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import redis
from redis.exceptions import AskError, MovedError, RedisClusterException

from scrapeshield.state.base import ClientMemory
from scrapeshield.state.layout import memory_value, set_command

# What a failed cluster call raises: redis-py's errors, its cluster errors (not RedisErrors: a
# slot no node serves), a slot missing from the table while it is rebuilt, socket errors.
FAILURES = (redis.RedisError, RedisClusterException, KeyError, OSError)
_MAX_PENDING = 10_000


class MemoryWrites:
    def __init__(self, cluster: Any, ttl: bytes) -> None:
        self.cluster = cluster
        self.ttl = ttl
        # per node: a connection of the writes' own, and the writes not yet answered on it
        self._writers: dict[str, tuple[Any, deque[tuple[bytes, bytes]]]] = {}
        self.errors = 0  # writes lost (their node failed, or refused them)

    def send(self, key: bytes, memory: ClientMemory) -> None:
        """Write the memory on its node's connection; the reply is read by ``settle``."""
        try:
            node = self.cluster.get_node_from_key(key)
            writer = self._writers.get(node.name)
            if writer is None:
                pool = self.cluster.get_redis_connection(node).connection_pool
                writer = self._writers[node.name] = (pool.make_connection(), deque())
        except FAILURES:
            self.errors += 1
            return
        conn, pending = writer
        value = memory_value(memory)
        try:
            if len(pending) >= _MAX_PENDING:  # the node has not answered for a while
                raise redis.ConnectionError("memory writes unanswered")
            conn.send_packed_command((set_command(key, value, self.ttl),), check_health=False)
        except FAILURES:
            self.errors += len(pending) + 1
            conn.disconnect()
            del self._writers[node.name]
            return
        pending.append((key, value))

    def settle(self) -> None:
        """Read the replies to the writes sent so far; make the redirected ones again."""
        for name, (conn, pending) in list(self._writers.items()):
            try:
                while pending:
                    key, value = pending[0]
                    try:
                        conn.read_response()
                    except (MovedError, AskError):  # the slot is moving or has moved
                        self.cluster.set(key, value, ex=int(self.ttl))
                    except redis.ResponseError:
                        self.errors += 1
                    pending.popleft()
            except FAILURES:
                self.errors += len(pending)
                conn.disconnect()
                del self._writers[name]

    def close(self) -> None:
        for conn, _ in self._writers.values():
            conn.disconnect()
        self._writers.clear()
