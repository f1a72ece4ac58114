"""One pipelined asyncio connection to Redis: each turn's commands in one write, replies
parsed by hiredis as bytes arrive and handed, in order, to the futures waiting for them.

redis-py opens the connection (its URL options: AUTH, HELLO, SELECT, TLS, Unix sockets);
then this protocol takes the transport over. redis-py's own asyncio path costs a
coroutine, a read and a parse call per reply (25-40 us of client CPU per decision);
here a batch of replies costs one ``data_received`` and one ``gets`` per reply.

Replies the caller does not wait for (a ``SCRIPT LOAD`` sent ahead of a retry) are read
and dropped; commands sent after ``CLIENT REPLY SKIP`` have no reply at all. No command
sent here answers with an array, so an array is a RESP3 push message and is skipped.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

import hiredis

from scrapeshield.errors import StateError

# A reply's waiter; None: read the reply and drop it.
Waiter = asyncio.Future[Any] | None


class Wire(asyncio.Protocol):
    def __init__(self, transport: asyncio.BaseTransport, timeout: float, owner: object = None) -> None:
        self.transport: Any = transport
        self._owner = owner  # the stream that held the transport: its finaliser would close it
        self.timeout = timeout
        self.closed = False
        self._reader = hiredis.Reader()
        self._waiting: deque[Waiter] = deque()
        self._sent = 0  # replies asked for since the connection opened
        self._answered = 0  # replies read
        self._loop = asyncio.get_running_loop()
        transport.set_protocol(self)

    @classmethod
    async def open(cls, pool: Any, timeout: float) -> Wire:
        """A connection made and set up by redis-py, then taken over (it forgets it)."""
        conn = pool.make_connection()
        async with asyncio.timeout(timeout):
            await conn.connect()
        stream = conn._writer  # noqa: SLF001 - the handover
        conn._writer = conn._reader = None  # noqa: SLF001 - redis-py must not close it
        return cls(stream.transport, timeout, stream)

    def send(self, data: bytes, waiters: list[Waiter]) -> None:
        """Write commands; ``waiters`` line up with the replies they will get."""
        if self.closed:
            self.fail(waiters, StateError("redis: connection closed"))
            return
        self._waiting.extend(waiters)
        self._sent += len(waiters)
        self.transport.write(data)
        if waiters:  # each batch is bounded by the time-out, from when it leaves
            self._loop.call_later(self.timeout, self._expire, self._sent)

    @property
    def busy(self) -> bool:
        return bool(self._waiting)

    def close(self) -> None:
        """Close after the buffered writes are sent (the transport's own behaviour)."""
        if not self.closed:
            self.closed = True
            self.transport.close()
        self.fail(list(self._waiting), StateError("redis: connection closed"))
        self._waiting.clear()

    # -- asyncio.Protocol --------------------------------------------------------------

    def data_received(self, data: bytes) -> None:
        reader, waiting = self._reader, self._waiting
        reader.feed(data)
        while True:
            reply = reader.gets()
            if reply is False:
                return
            if isinstance(reply, list):  # a push message, not a reply
                continue
            if not waiting:  # more replies than asked: the stream is out of step
                self._abort(StateError("redis: unexpected reply"))
                return
            self._answered += 1
            waiter = waiting.popleft()
            if waiter is not None and not waiter.done():
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        failure = StateError(f"redis: connection lost ({exc or 'closed by the server'})")
        self.fail(list(self._waiting), failure)
        self._waiting.clear()

    # -- failures ----------------------------------------------------------------------

    def _expire(self, until: int) -> None:
        if self._answered < until and not self.closed:
            self._abort(StateError(f"redis: no reply within {self.timeout:g}s"))

    def _abort(self, failure: StateError) -> None:
        """A connection in doubt is dropped: every call waiting on it fails."""
        self.closed = True
        self.transport.abort()
        self.fail(list(self._waiting), failure)
        self._waiting.clear()

    @staticmethod
    def fail(waiters: list[Waiter], failure: StateError) -> None:
        for waiter in waiters:
            if waiter is not None and not waiter.done():
                waiter.set_exception(failure)
