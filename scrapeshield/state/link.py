"""One sync connection to Redis: commands written as bytes, replies parsed by hiredis.

redis-py opens the connection (its URL options: AUTH, HELLO, SELECT, TLS, Unix sockets) and
still owns the socket (``disconnect`` closes it); this class only writes and reads on it,
without redis-py's command layer and parser (a read through them costs more client CPU
than the round trip it waits for).

A plain socket gets its time-out from the kernel (``SO_RCVTIMEO``/``SO_SNDTIMEO``) rather
than from Python (whose time-out costs a ``poll`` before every ``send`` and ``recv``): a
write is one ``send`` and the wait for a reply one ``recv``. A TLS socket keeps Python's
time-out. (Spinning on ``recv`` instead of sleeping in ``poll`` was tried: on a loaded
machine the spinning client took the core the server needed, and decisions got slower.)
"""

from __future__ import annotations

import socket
import ssl
import struct
from typing import Any

import hiredis

from scrapeshield.errors import StateError

_CHUNK = 65_536


class Link:
    def __init__(self, conn: Any, timeout: float) -> None:
        self.conn = conn  # redis-py's connection: it owns the socket
        sock: socket.socket = conn._sock  # noqa: SLF001 - the handover
        self.sock = sock
        self.timeout = timeout
        self._reader = hiredis.Reader()
        self._buffer = bytearray(_CHUNK)
        self._plain = not isinstance(sock, ssl.SSLSocket)
        if self._plain:
            sock.settimeout(None)
            seconds = struct.pack("ll", int(timeout), int(timeout % 1 * 1e6) or 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, seconds)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, seconds)

    @classmethod
    def open(cls, pool: Any, timeout: float) -> Link:
        conn = pool.make_connection()
        conn.connect()
        return cls(conn, timeout)

    def send(self, data: bytes) -> None:
        """Write all of ``data`` (bounded by the time-out)."""
        try:
            self.sock.sendall(data)
        except (BlockingIOError, TimeoutError) as exc:  # the kernel's time-out, or Python's
            raise StateError(f"redis: could not write within {self.timeout:g}s") from exc

    def read(self) -> Any:
        """The next reply (an error reply is returned as ``hiredis.ReplyError``, not raised)."""
        reply = self._reader.gets()
        while reply is False:
            try:
                got = self.sock.recv_into(self._buffer)
            except (BlockingIOError, TimeoutError) as exc:
                raise StateError(f"redis: no reply within {self.timeout:g}s") from exc
            reply = self._take(got)
        return reply

    def _take(self, got: int) -> Any:
        if not got:
            raise StateError("redis: connection closed by the server")
        self._reader.feed(self._buffer, 0, got)  # type: ignore[arg-type]  # any buffer will do
        return self._reader.gets()

    def close(self) -> None:
        self.conn.disconnect()
