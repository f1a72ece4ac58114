"""Counter state in Redis (or Valkey): one round trip per decision.

``update`` is one EVALSHA of ``lua/update.lua``, which does for every key of the
request what ``memory.py`` does in-process (two-bucket windows, capped distinct-record
sorted sets) and returns the usages and the client's memory in one string.

Keys (``ss`` is the prefix): ``ss:{ip:1.2.3.4}:w`` (window counters), ``ss:{ip:1.2.3.4}:d3``
(records read, for the distinct counter at index 3), ``ss:{ip:1.2.3.4}:m`` (the client's
memory). The hash tag is the entity, never the client: ``ss:{subnet:1.2.3.0/24}:w`` is
one key for every address in that subnet, as it must be, and the client's memory shares
its IP's tag. So on Redis Cluster each entity is one slot, and the script (which takes
any number of entities) runs once per slot, the calls sent to their nodes all at once:
still one round trip of waiting (``cluster.py``). This store talks to one server (Redis 7,
Valkey 7.2+: the same commands; both tested), where one call covers all the entities of a
request.

Under asyncio, the decisions that wait at the same moment share a round trip: each turn
of the event loop's calls leave in one write on one connection and their replies come
back in order (auto-pipelining). Each is still its own atomic script call; 16 concurrent
decisions cost about one round trip, not 16.

``keep`` waits for nothing: it writes ``CLIENT REPLY SKIP`` + ``SET … EX idle_ttl`` (which
Redis does not answer) on the idle connection the next call will use, and returns. Redis
has the client's memory before this node's response leaves, so whichever node the client
comes to next reads it; only two nodes serving one client at the same instant race (the
last write wins). Cost: a socket write, no wait. (Under asyncio, when decisions are queued
in this turn of the event loop, the write leaves in their batch's write at the turn's end;
when every connection is busy, with this node's next call or on the loop's next turn.) The memory
is stored as packed doubles; a value in the older decimal form is still read.

The hot path bypasses redis-py's command layer (its pool, retries and response
callbacks cost more than the round trip) but uses its connections: AUTH, TLS, SELECT
and RESP parsing are redis-py's. A failed call raises ``StateError`` and drops the
connection; each call is bounded by ``timeout``. ``ResilientStore`` decides what a
failure means for the decision.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, KeyUpdate
from scrapeshield.state.layout import LOAD, Layout, Result, decode, keep_command, sizes

_IDLE_LINKS = 64
_MAX_OUTBOX = 10_000

class RedisStore:
    does_io = True

    def __init__(
        self, url: str = "redis://127.0.0.1:6379/0", *, prefix: str = "ss",
        idle_ttl: float = 3600.0, timeout: float = 0.05,
    ) -> None:
        url = url.replace("valkey", "redis", 1) if url.startswith("valkey") else url
        self.timeout = timeout
        self.idle_ttl = b"%d" % max(1, round(idle_ttl))
        self._layout = Layout(prefix)
        self._pool = redis.ConnectionPool.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout)
        self._apool: Any = aioredis.ConnectionPool.from_url(  # time-outs: asyncio.timeout per call
            url, socket_timeout=None, socket_connect_timeout=timeout)
        self.client = redis.Redis(connection_pool=self._pool)  # admin commands only
        self._links: list[Any] = []  # idle connections, last used first
        self._pid = os.getpid()  # a forked worker must not share its parent's sockets
        self._alinks: list[Any] = []
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._outbox: list[bytes] = []  # asyncio memory writes waiting for a connection
        self._lock = threading.Lock()
        self._flush: asyncio.Task[None] | None = None  # sending the outbox
        # asyncio decisions waiting for this turn's batch, and the batches in flight
        self._queue: list[tuple[bytes, asyncio.Future[bytes]]] = []
        self._batches: set[asyncio.Task[None]] = set()
        self.round_trips = 0  # waits for Redis (update/aupdate calls)
        self.write_errors = 0  # memory writes that could not be sent

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        command = self._layout.evalsha(updates, self._layout.memory_key(client), now)
        self.round_trips += 1
        conn = self._take()
        try:
            conn.send_packed_command((command,), check_health=False)
            try:
                reply = conn.read_response()
            except NoScriptError:  # a restarted or flushed server: load, then run again
                conn.send_packed_command((LOAD + command,), check_health=False)
                conn.read_response()
                reply = conn.read_response()
        except (redis.RedisError, OSError) as exc:
            self._links, idle = [], self._links  # after a failure the idle ones are suspect too
            for dead in (conn, *idle):
                dead.disconnect()
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc
        if len(self._links) < _IDLE_LINKS:
            self._links.append(conn)
        return decode(reply, sizes(updates), now)

    async def aupdate(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        command = self._layout.evalsha(updates, self._layout.memory_key(client), now)
        loop = asyncio.get_running_loop()
        self._atake_loop(loop)
        waiter: asyncio.Future[bytes] = loop.create_future()
        self._queue.append((command, waiter))
        if len(self._queue) == 1:  # the first this turn: the batch leaves at the turn's end
            loop.call_soon(self._dispatch)
        return decode(await waiter, sizes(updates), now)

    def _dispatch(self) -> None:
        """Send every decision queued during this turn of the event loop in one write."""
        batch, self._queue = self._queue, []
        if batch:
            task = asyncio.get_running_loop().create_task(self._exchange(batch))
            self._batches.add(task)
            task.add_done_callback(self._batches.discard)

    async def _exchange(self, batch: list[tuple[bytes, asyncio.Future[bytes]]]) -> None:
        """One round trip for a batch: its commands in one write, then their replies in order."""
        self.round_trips += 1
        conn = self._atake()
        replies: list[Any] = []
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send_packed_command(
                    self._drain() + b"".join(c for c, _ in batch), check_health=False)
                replies = [await self._reply(conn) for _ in batch]
                missing = [i for i, r in enumerate(replies) if isinstance(r, NoScriptError)]
                if missing:  # a restarted or flushed server: load, then run those again
                    await conn.send_packed_command(
                        LOAD + b"".join(batch[i][0] for i in missing), check_health=False)
                    await conn.read_response()
                    for i in missing:
                        replies[i] = await self._reply(conn)
        except BaseException as exc:  # whatever it is, no decision of the batch may wait forever
            self._alinks, idle = [], self._alinks  # after a failure the idle ones are suspect too
            failure = StateError(f"redis: {exc or type(exc).__name__}")
            for _, waiter in batch:
                if not waiter.done():
                    waiter.set_exception(failure)
            for dead in (conn, *idle):
                await dead.disconnect(nowait=True)
            if not isinstance(exc, Exception):  # cancelled, or the process is ending
                raise
            return
        if len(self._alinks) < _IDLE_LINKS:
            self._alinks.append(conn)
        for (_, waiter), reply in zip(batch, replies, strict=True):
            if waiter.done():  # its caller went away
                continue
            if isinstance(reply, Exception):
                waiter.set_exception(StateError(f"redis: {reply}"))
            else:
                waiter.set_result(reply)

    @staticmethod
    async def _reply(conn: Any) -> Any:
        """One reply; an error reply is returned (it concerns one decision), not raised."""
        try:
            return await conn.read_response()
        except redis.ResponseError as exc:
            return exc

    def keep(self, client: str, memory: ClientMemory) -> None:
        command = keep_command(self._layout.memory_key(client), memory, self.idle_ttl)
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send(command)
            return
        self._atake_loop(loop)
        writer = getattr(self._alinks[-1], "_writer", None) if self._alinks else None
        if not self._queue and writer is not None and not writer.is_closing():
            writer.write(command)  # a non-blocking socket write: nothing to await
            return
        # Decisions are queued this turn: the write leaves in their batch's write (one
        # send for them all, not one per decision), at the end of this turn of the loop.
        with self._lock:
            if len(self._outbox) >= _MAX_OUTBOX:  # Redis has not been reachable for a while
                self.write_errors += 1
                return
            self._outbox.append(command)
        if self._flush is None and not self._queue:
            self._flush = loop.create_task(self._aflush())

    def tracked_clients(self) -> int:
        """Keys in the database (all of them: give scrapeshield a database of its own)."""
        try:
            return int(self.client.dbsize())
        except (redis.RedisError, OSError) as exc:
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc

    # -- the rest ----------------------------------------------------------------------

    def close(self) -> None:
        for conn in self._links:
            conn.disconnect()
        self._links = []
        self._pool.disconnect()

    async def aclose(self) -> None:
        """Send queued writes and close the asyncio connections (on the loop that used them)."""
        if self._batches:
            await asyncio.gather(*self._batches, return_exceptions=True)
        if self._flush is not None:
            await self._flush
        links, self._alinks = self._alinks, []
        for conn in links:
            await conn.disconnect()

    def _send(self, command: bytes) -> None:
        """Write a command that has no reply (CLIENT REPLY SKIP), without waiting."""
        conn = self._take()
        try:
            conn.send_packed_command((command,), check_health=False)
        except (redis.RedisError, OSError):
            conn.disconnect()
            self.write_errors += 1
            return
        self._links.append(conn)

    def _take(self) -> Any:
        if self._pid != os.getpid():
            self._pid, self._links, self._alinks = os.getpid(), [], []
        try:
            return self._links.pop()
        except IndexError:
            return self._pool.make_connection()

    def _atake_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        if loop is not self._aloop:  # connections belong to the loop that made them
            self._aloop, self._alinks, self._flush, self._queue = loop, [], None, []

    def _atake(self) -> Any:
        self._atake_loop(asyncio.get_running_loop())
        return self._alinks.pop() if self._alinks else self._apool.make_connection()

    def _drain(self) -> bytes:
        if not self._outbox:
            return b""
        with self._lock:
            batch, self._outbox = self._outbox, []
        return b"".join(batch)

    async def _aflush(self) -> None:
        """Send the queued writes on a connection of their own (opened if need be)."""
        conn = self._atake()
        try:
            async with asyncio.timeout(self.timeout):
                while self._outbox:
                    await conn.send_packed_command(self._drain(), check_health=False)
        except (redis.RedisError, OSError):
            await conn.disconnect(nowait=True)
            self.write_errors += 1
            return
        finally:
            self._flush = None
        self._alinks.append(conn)
