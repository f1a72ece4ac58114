"""Counter state in Redis (or Valkey): one round trip per decision.

``update`` is one EVALSHA of ``lua/update.lua``, which does for every key of the
request what ``memory.py`` does in-process (two-bucket windows, capped distinct-record
sorted sets) and returns the usages and the client's memory in one string.

Keys (``ss`` is the prefix): ``ss:{ip:1.2.3.4}:w`` (window counters), ``ss:{ip:1.2.3.4}:d3``
(records read, for the distinct counter at index 3), ``ss:{ip:1.2.3.4}:m`` (the client's
memory). The hash tag is the entity, never the client: ``ss:{subnet:1.2.3.0/24}:w`` is
one key for every address in that subnet, as it must be, and the client's memory shares
its IP's tag. So on Redis Cluster each entity is one slot, and the script (which takes
any number of entities) runs once per entity, the calls sent to their nodes all at once:
still one round trip of waiting. This client talks to one server (Redis 7, Valkey 7.2+:
the same commands), where one call covers all the entities of a request.

``keep`` waits for nothing: it writes ``CLIENT REPLY SKIP`` + ``SET … EX idle_ttl`` (which
Redis does not answer) on the idle connection the next call will use, and returns. Redis
has the client's memory before this node's response leaves, so whichever node the client
comes to next reads it; only two nodes serving one client at the same instant race (the
last write wins). Cost: a socket write, no wait. (Under asyncio, when every connection is
busy, the write leaves with this node's next call or on the loop's next turn.)

The hot path bypasses redis-py's command layer (its pool, retries and response
callbacks cost more than the round trip) but uses its connections: AUTH, TLS, SELECT
and RESP parsing are redis-py's. A failed call raises ``StateError`` and drops the
connection; each call is bounded by ``timeout``. ``ResilientStore`` decides what a
failure means for the decision.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import threading
from collections.abc import Sequence
from importlib.resources import files
from typing import Any

import redis
import redis.asyncio as aioredis
from redis.exceptions import NoScriptError

from scrapeshield.errors import StateError
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate

SCRIPT = (files("scrapeshield.state") / "lua" / "update.lua").read_bytes()
SHA = hashlib.sha1(SCRIPT).hexdigest().encode()
_MEMORY_SIZE = len(ClientMemory().values)
_MAX_KEY = 200  # longer key values and records are stored as a digest
_MAX_RECORD = 100
_IDLE_LINKS = 64
_MAX_OUTBOX = 10_000
_SKIP = b"*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$4\r\nSKIP\r\n"  # no reply to the next command
_Result = tuple[list[tuple[float, ...]], ClientMemory]


def _pack(args: Sequence[bytes]) -> bytes:
    """One command in RESP."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        parts.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
    return b"".join(parts)


_LOAD = _pack((b"SCRIPT", b"LOAD", SCRIPT))


def _bytes(text: str, limit: int) -> bytes:
    raw = text.encode("utf-8", "surrogatepass")
    if 0 < len(raw) <= limit and raw[0] != 0x7D:  # "}" first would leave the hash tag empty
        return raw
    return raw[:16].replace(b"}", b")") + b"~" + hashlib.blake2b(raw, digest_size=16).hexdigest().encode()


class Layout:
    """Key names and script arguments under one prefix (shared with the Cluster store)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix.encode() + b":{"
        self._shapes: dict[tuple[int, int], tuple[Any, Any, bytes, tuple[bytes, ...]]] = {}

    def memory_key(self, client: str) -> bytes:
        return self.prefix + _bytes(client, _MAX_KEY) + b"}:m"

    def script_args(
        self, updates: Sequence[KeyUpdate], memory_key: bytes | None, now: float
    ) -> tuple[list[bytes], list[bytes]]:
        """The script's KEYS and ARGV for these entities (and the client's memory, if given)."""
        prefix = self.prefix
        keys: list[bytes] = []
        argv = [repr(float(now)).encode(), b"%d" % len(updates)]
        for key, specs, costs, record in updates:
            spec, sets = self._shape(specs, costs)
            base = prefix + _bytes(key, _MAX_KEY) + b"}:"
            keys.append(base + b"w")
            for suffix in sets:
                keys.append(base + suffix)
            argv.append(spec)
            argv.append(_bytes(record, _MAX_RECORD) if record else b"")
        if memory_key is not None:
            keys.append(memory_key)
        return keys, argv

    def _shape(
        self, specs: tuple[CounterSpec, ...], costs: tuple[int, ...]
    ) -> tuple[bytes, tuple[bytes, ...]]:
        """The script's description of a key's counters, and its record-set key suffixes (cached)."""
        ident = (id(specs), id(costs))
        got = self._shapes.get(ident)
        if got is None or got[0] is not specs or got[1] is not costs:
            spec = " ".join(f"{float(w)!r} {int(d)} {int(lim)} {int(c)}"
                            for (w, d, lim), c in zip(specs, costs, strict=True))
            sets = tuple(b"d%d" % i for i, (_, d, _) in enumerate(specs) if d)
            if len(self._shapes) > 10_000:
                self._shapes.clear()
            got = self._shapes[ident] = (specs, costs, spec.encode(), sets)
        return got[2], got[3]


def memory_value(memory: ClientMemory) -> bytes:
    return ",".join(map(repr, memory.values)).encode()


def decode(reply: bytes, count: int, now: float) -> _Result:
    """The script's reply: per entity its usages, then the client's memory."""
    if not isinstance(reply, bytes):
        raise StateError(f"redis: unexpected reply {reply!r:.80}")
    parts = reply.split(b"|", count)
    if len(parts) != count + 1:
        raise StateError(f"redis: unexpected reply {reply[:80]!r}")
    return [tuple(map(float, p.split())) for p in parts[:count]], _memory(parts[count], now)


def _memory(raw: bytes, now: float) -> ClientMemory:
    if raw:
        try:
            values = [float(x) for x in raw.split(b",")]
        except ValueError:
            values = []
        if len(values) == _MEMORY_SIZE:
            return ClientMemory(values=values)
    return ClientMemory(now)


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
        self.round_trips = 0  # waits for Redis (update/aupdate calls)
        self.write_errors = 0  # memory writes that could not be sent

    # -- the protocol ------------------------------------------------------------------

    def update(self, updates: Sequence[KeyUpdate], client: str, now: float) -> _Result:
        command = self._command(updates, client, now)
        self.round_trips += 1
        conn = self._take()
        try:
            conn.send_packed_command((command,), check_health=False)
            try:
                reply = conn.read_response()
            except NoScriptError:  # a restarted or flushed server: load, then run again
                conn.send_packed_command((_LOAD + command,), check_health=False)
                conn.read_response()
                reply = conn.read_response()
        except (redis.RedisError, OSError) as exc:
            self._links, idle = [], self._links  # after a failure the idle ones are suspect too
            for dead in (conn, *idle):
                dead.disconnect()
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc
        if len(self._links) < _IDLE_LINKS:
            self._links.append(conn)
        return self._decode(reply, len(updates), now)

    async def aupdate(self, updates: Sequence[KeyUpdate], client: str, now: float) -> _Result:
        command = self._command(updates, client, now)
        self.round_trips += 1
        conn = self._atake()
        try:
            async with asyncio.timeout(self.timeout):
                await conn.send_packed_command(self._drain() + command, check_health=False)
                try:
                    reply = await conn.read_response()
                except NoScriptError:
                    await conn.send_packed_command(_LOAD + command, check_health=False)
                    await conn.read_response()
                    reply = await conn.read_response()
        except (redis.RedisError, OSError) as exc:  # TimeoutError is an OSError
            self._alinks, idle = [], self._alinks
            for dead in (conn, *idle):
                await dead.disconnect(nowait=True)
            raise StateError(f"redis: {exc or type(exc).__name__}") from exc
        if len(self._alinks) < _IDLE_LINKS:
            self._alinks.append(conn)
        return self._decode(reply, len(updates), now)

    def keep(self, client: str, memory: ClientMemory) -> None:
        key = self._layout.memory_key(client)
        command = _SKIP + _pack((b"SET", key, memory_value(memory), b"EX", self.idle_ttl))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self._send(command)
            return
        self._atake_loop(loop)
        writer = getattr(self._alinks[-1], "_writer", None) if self._alinks else None
        if writer is not None and not writer.is_closing():
            writer.write(command)  # a non-blocking socket write: nothing to await
            return
        with self._lock:
            if len(self._outbox) >= _MAX_OUTBOX:  # Redis has not been reachable for a while
                self.write_errors += 1
                return
            self._outbox.append(command)
        if self._flush is None:
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
        if self._flush is not None:
            await self._flush
        links, self._alinks = self._alinks, []
        for conn in links:
            await conn.disconnect()

    def _command(self, updates: Sequence[KeyUpdate], client: str, now: float) -> bytes:
        keys, argv = self._layout.script_args(updates, self._layout.memory_key(client), now)
        return _pack((b"EVALSHA", SHA, b"%d" % len(keys), *keys, *argv))

    @staticmethod
    def _decode(reply: bytes, count: int, now: float) -> _Result:
        return decode(reply, count, now)

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
            self._aloop, self._alinks, self._flush = loop, [], None

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
