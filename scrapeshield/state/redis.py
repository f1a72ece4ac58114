"""Counter state in Redis (or Valkey): one round trip per decision.

``update`` is one EVALSHA of ``lua/update.lua``, which does for every key of the
request what ``memory.py`` does in-process (two-bucket windows, capped distinct-record
sorted sets) and returns the usages and the client's memory in one string.

Keys (``ss`` is the prefix): ``ss:{ip:1.2.3.4}:w`` (window counters), ``ss:{ip:1.2.3.4}:d3``
(records read, for the distinct counter at index 3: distinct counters of one key that count
the same routes share their longest window's set, see ``layout.owners``),
``ss:{ip:1.2.3.4}:m`` (the client's memory). The hash tag is the entity, never the client:
``ss:{subnet:1.2.3.0/24}:w`` is one key for every address in that subnet, as it must be,
and the client's memory shares its IP's tag. So on Redis Cluster each entity is one slot,
and the script (which takes any number of entities) runs once per slot, the calls sent to
their nodes all at once: still one round trip of waiting (``cluster.py``). This store talks
to one server (Redis 7, Valkey 7.2+: the same commands; both tested), where one call covers
all the entities of a request.

Under asyncio, the decisions that wait at the same moment share a round trip: each turn
of the event loop's calls leave in one write on one pipelined connection and their
replies come back in order (``wire.py``: hiredis parses them as they arrive). Each is
still its own atomic script call; 16 concurrent decisions cost about one round trip.

``keep`` waits for nothing: it writes ``CLIENT REPLY SKIP`` + ``SET … EX idle_ttl`` (which
Redis does not answer) on the idle connection the next call will use, and returns. Redis
has the client's memory before this node's response leaves, so whichever node the client
comes to next reads it; only two nodes serving one client at the same instant race (the
last write wins). Cost: a socket write, no wait. (Under asyncio, when decisions are queued
in this turn of the event loop, the write leaves in their one write at the turn's end.)
The memory is stored as packed doubles; a value in the older decimal form is still read.

The hot path bypasses redis-py's command layer (its pool, retries and response
callbacks cost more than the round trip) but uses its connections: AUTH, TLS, SELECT
are redis-py's; replies are parsed by hiredis (sync: ``link.py``, asyncio: ``wire.py``).
A failed call raises ``StateError`` and drops the connection; each call is bounded by
``timeout``. ``ResilientStore`` decides what a
failure means for the decision.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Sequence
from typing import Any, cast

import hiredis
import redis
import redis.asyncio as aioredis

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate
from scrapeshield.state.layout import LOAD, Layout, Result, decode, keep_command, sizes
from scrapeshield.state.link import Link
from scrapeshield.state.wire import Waiter, Wire

_IDLE_LINKS = 64
_MAX_OUTBOX = 10_000
# Calls per write at most: a batch of them leaves at once, so that Redis runs their scripts
# while this process prepares the next (all in one write would leave one side idle in turn).
_BATCH = 4
# What a sync call's reply is read with: its connection, command, updates and time.
_Sent = tuple[Link, bytes, Sequence[KeyUpdate], float]
_FAILURES = (StateError, redis.RedisError, OSError, hiredis.ProtocolError)
# Forks since the module loaded (counted in the child): checked instead of the process id,
# which costs a system call each time.
_FORKS = [0]


def _forked() -> None:
    _FORKS[0] += 1


os.register_at_fork(after_in_child=_forked)

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
        self._links: list[Link] = []  # idle connections, last used first
        self._forks = _FORKS[0]  # the forks this process is down from, when the links were made
        # asyncio: one pipelined connection (of the loop that made it), what this turn of
        # the loop will write on it, and the replies those commands will get
        self._aloop: asyncio.AbstractEventLoop | None = None
        self._wire: Wire | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._outbox: list[bytes] = []
        self._waiters: list[Waiter] = []
        self._scheduled = False
        self._fresh = 0  # calls in the outbox that are not retries
        self.round_trips = 0  # waits for Redis (update/aupdate calls)
        self.write_errors = 0  # memory writes that could not be sent

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        return self.receive(self.send(updates, client, now))

    def send(self, updates: Sequence[KeyUpdate], client: str, now: float) -> _Sent:
        """``update``'s first half: the script call written on an idle connection."""
        command = self._layout.evalsha(updates, self._layout.memory_key(client), now)
        self.round_trips += 1
        link: Link | None = None
        try:
            link = self._take()  # (may connect)
            link.send(command)
        except _FAILURES as exc:
            self._drop(link)
            if isinstance(exc, StateError):
                raise
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc
        return link, command, updates, now

    def receive(self, call: object) -> Result:
        """``update``'s second half: the reply to the call ``send`` made."""
        link, command, updates, now = cast(_Sent, call)
        try:
            reply = link.read()
            if isinstance(reply, hiredis.ReplyError) and str(reply).startswith("NOSCRIPT"):
                # A restarted or flushed server: load the script, then run it again.
                link.send(LOAD + command)
                link.read()
                reply = link.read()
        except _FAILURES as exc:
            self._drop(link)
            if isinstance(exc, StateError):
                raise
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc
        if len(self._links) < _IDLE_LINKS:
            self._links.append(link)
        if isinstance(reply, hiredis.ReplyError):  # an error reply concerns this call alone
            raise StateError(f"redis: {reply}")
        return decode(reply, sizes(updates), now)

    def _drop(self, link: Link | None) -> None:
        """Close a failed connection, and the idle ones (after a failure they are suspect too)."""
        self._links, idle = [], self._links
        for dead in idle if link is None else (link, *idle):
            dead.close()

    async def aupdate(self, updates: Sequence[KeyUpdate], client: str, now: float) -> Result:
        command = self._layout.evalsha(updates, self._layout.memory_key(client), now)
        reply = await self._ask(command)
        if isinstance(reply, hiredis.ReplyError):  # an error reply concerns this call alone
            if not str(reply).startswith("NOSCRIPT"):
                raise StateError(f"redis: {reply}")
            # A restarted or flushed server: load the script (its reply dropped), run again.
            reply = await self._ask(command, LOAD)
            if isinstance(reply, hiredis.ReplyError):
                raise StateError(f"redis: {reply}")
        return decode(reply, sizes(updates), now)

    def _ask(self, command: bytes, before: bytes = b"") -> asyncio.Future[Any]:
        """Queue a command for this turn's write; its reply comes in the future returned.
        ``before``: a command sent first whose reply is dropped."""
        loop = asyncio.get_running_loop()
        if loop is not self._aloop:
            self._switch(loop)
        waiter: asyncio.Future[Any] = loop.create_future()
        if before:
            self._outbox.append(before)
            self._waiters.append(None)
        self._outbox.append(command)
        self._waiters.append(waiter)
        self._fresh += not before
        if self._fresh >= _BATCH and self._wire is not None:
            self._flush()  # Redis starts on these while this process prepares the next
        else:
            self._schedule(loop)
        return waiter

    def _switch(self, loop: asyncio.AbstractEventLoop) -> None:
        """Connections belong to the loop that made them: a new loop starts afresh."""
        self._aloop, self._wire, self._connecting = loop, None, None
        self._outbox, self._waiters, self._scheduled, self._fresh = [], [], False, 0

    def _schedule(self, loop: asyncio.AbstractEventLoop) -> None:
        if not self._scheduled:  # the turn's first: everything queued leaves at its end
            self._scheduled = True
            loop.call_soon(self._dispatch)

    def _dispatch(self) -> None:
        """At the end of a turn of the event loop: send what it queued."""
        self._scheduled = False
        self._flush()

    def _flush(self) -> None:
        """Send everything queued in one write (or connect first)."""
        wire = self._wire
        if wire is None or wire.closed:
            if self._connecting is None and (self._waiters or self._outbox):
                self._connecting = asyncio.get_running_loop().create_task(self._connect())
            return  # sent once connected
        if not self._outbox:
            return
        data, waiters = b"".join(self._outbox), self._waiters
        self._outbox, self._waiters = [], []
        if self._fresh:  # (as in ``update``, a retry after a script reload is not counted)
            self.round_trips += 1
            self._fresh = 0
        wire.send(data, waiters)

    async def _connect(self) -> None:
        try:
            self._wire = await Wire.open(self._apool, self.timeout)
        except BaseException as exc:  # whatever it is, no decision may wait forever
            waiters, self._waiters = self._waiters, []
            self.write_errors += len(self._outbox) - len(waiters)
            self._outbox = []
            Wire.fail(waiters, StateError(f"redis: {exc or type(exc).__name__}"))
            if not isinstance(exc, Exception):  # cancelled, or the process is ending
                raise
            return
        finally:
            self._connecting = None
        self._flush()

    def keep(self, client: str, memory: ClientMemory) -> None:
        command = keep_command(self._layout.memory_key(client), memory, self.idle_ttl)
        loop = asyncio._get_running_loop()  # (None outside a loop: no exception to raise and catch)
        if loop is None:
            self._send(command)
            return
        if loop is not self._aloop:
            self._switch(loop)
        if len(self._outbox) >= _MAX_OUTBOX:  # Redis has not been reachable for a while
            self.write_errors += 1
            return
        wire = self._wire
        if not self._scheduled and wire is not None and not wire.closed:
            wire.send(command, [])  # a non-blocking socket write: nothing to await
            return
        # Decisions were queued this turn: the write leaves with the next of their writes
        # (one send for them all, not one per decision), at the end of this turn at the latest.
        self._outbox.append(command)
        self._schedule(loop)

    def share_sets(self, specs: tuple[CounterSpec, ...], routes: Sequence[frozenset[str] | None]) -> None:
        """Distinct counters that count the same routes keep one record set (the engine says
        which, per policy: ``layout.Layout.share_sets``)."""
        self._layout.share_sets(specs, routes)

    def tracked_clients(self) -> int:
        """Keys in the database (all of them: give scrapeshield a database of its own)."""
        try:
            return int(self.client.dbsize())
        except (redis.RedisError, OSError) as exc:
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc

    # -- the rest ----------------------------------------------------------------------

    def close(self) -> None:
        for link in self._links:
            link.close()
        self._links = []
        self._pool.disconnect()

    async def aclose(self) -> None:
        """Send queued writes, wait for the replies in flight, close the asyncio connection."""
        if self._aloop is not asyncio.get_running_loop():
            return
        if self._outbox:
            self._flush()
        if self._connecting is not None:
            await asyncio.gather(self._connecting, return_exceptions=True)
        wire, self._wire = self._wire, None
        if wire is not None:
            for _ in range(max(1, int(self.timeout / 0.001))):  # bounded: replies or time-out
                if not wire.busy:
                    break
                await asyncio.sleep(0.001)
            wire.close()

    def _send(self, command: bytes) -> None:
        """Write a command that has no reply (CLIENT REPLY SKIP), without waiting."""
        link: Link | None = None
        try:
            link = self._take()
            link.send(command)
        except (StateError, redis.RedisError, OSError):
            self.write_errors += 1
            if link is not None:
                link.close()
            return
        self._links.append(link)

    def _take(self) -> Link:
        if self._forks != _FORKS[0]:  # a forked worker must not share its parent's sockets
            self._forks, self._links = _FORKS[0], []
        try:
            return self._links.pop()
        except IndexError:
            return Link.open(self._pool, self.timeout)
