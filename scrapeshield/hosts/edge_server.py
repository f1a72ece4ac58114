"""A lean HTTP/1.1 server for the decision service: one asyncio protocol over httptools.

Why not uvicorn here: an edge proxy asks about every request it serves, over connections it
keeps open, and wants a status and a few headers back. uvicorn's ASGI machinery (a task, a
scope and two message dicts per request) cost about 16 µs more CPU per request than this
(uvicorn on asyncio's loop, as serve_pair ran it, against this on uvloop). Here a reply
the service has at once (the engine on in-memory state) is written from ``data_received``,
with no task; a reply that must wait (a networked state store, a tarpit's delay) is awaited
in a task, and requests pipelined behind it wait their turn.

What it speaks is what proxies send: HTTP/1.1 and 1.0, keep-alive, pipelining, bodies by
length or chunked (``Expect: 100-continue`` answered). It refuses upgrades (the request is
answered, then the connection closed), request heads over MAX_HEAD bytes or MAX_HEADERS
headers (431) and garbage (400); a body beyond ``max_body`` is discarded and the service
told (None). A connection with nothing to do closes after IDLE_TIMEOUT, longer than nginx's
60 s upstream keepalive_timeout so that nginx, not this side, ends idle connections.

nginx's auth subrequests on one connection are alike: bodyless GETs with the same header names
in the same order, only some values changing. A read that holds exactly one such request, in a
plain form checked byte by byte (``_Connection._plain``), is split here without httptools,
reusing the header names (and unchanged values) of the connection's last request; anything
else (a partial read, pipelined requests, a body, other names, odd bytes) goes to httptools.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import socket
import stat
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from http import HTTPStatus
from typing import Final, cast
from urllib.parse import unquote

import httptools

from scrapeshield.actions.responses import Reply

log = logging.getLogger("scrapeshield.edge")

Answerer = Callable[["EdgeRequest", "bytes | None"], "Reply | Awaitable[Reply]"]

MAX_HEAD: Final = 65536  # request line and headers, bytes
MAX_HEADERS: Final = 128
MAX_PIPELINED: Final = 32  # queued requests before reading pauses
IDLE_TIMEOUT = 75.0
GRACE = 5.0  # seconds busy connections get to finish at shutdown
# Who connected over a Unix socket, for trusted_proxies: a process on this machine, as a
# loopback peer is (and the socket file's permissions decide which ones may).
UNIX_PEER = "127.0.0.1"
_STATUS = {s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode() for s in HTTPStatus}
_BARE = {s: line + b"content-length: 0\r\n\r\n" for s, line in _STATUS.items()}
_METHODS = {m.encode(): m for m in "GET HEAD POST PUT PATCH DELETE OPTIONS".split()}
_TEXT_METHODS: Final = {m: m for m in _METHODS.values()}
# Header names as received -> lower-case text. A proxy sends the same few names on every
# request: decoded once, and later lookups by the same str objects reuse their cached hash.
# Bounded, so that made-up names cannot grow it (beyond it, names are decoded each time).
_NAMES: Final[dict[bytes, str]] = {}  # Final: compiled code reads it without a module lookup
_MAX_NAMES: Final = 512
_MAX_SEEN: Final = 1024  # longer header values are not kept for the next request (_Connection.seen)
# Encoded header lines by (name, value), for the headers that recur unchanged (header_lines).
_LINES: Final[dict[tuple[str, str], bytes]] = {}
_MAX_LINES: Final = 256
_MAX_LINE_VALUE: Final = 32
_MAX_PLAIN: Final = 16384  # a longer read goes to httptools (far below MAX_HEAD: never a 431)
# Headers that change how a request is framed or kept (a body, keep-alive, an upgrade, 100
# Continue): a connection whose last request had one of them reads the next with httptools.
_FRAMING: Final = frozenset(["content-length", "transfer-encoding", "connection", "proxy-connection",
                             "upgrade", "expect"])


def _name(raw: bytes) -> str:
    name = _NAMES.get(raw)
    if name is None:
        name = raw.decode("latin-1").lower()
        if len(_NAMES) < _MAX_NAMES:
            _NAMES[raw] = name
    return name


def _origin(url: str) -> tuple[str, str]:
    """An origin-form target's path (percent-decoded as UTF-8, the fragment dropped) and query."""
    path, _, query = url.partition("?")
    if "#" in path:
        path = path.partition("#")[0]
    if "%" in path:
        path = unquote(path, encoding="utf-8", errors="replace")
    return path, query


def _status_line(status: int) -> bytes:
    return _STATUS.get(status) or f"HTTP/1.1 {status} Unknown\r\n".encode()


def header_lines(headers: Iterable[tuple[str, str]]) -> None:
    """Remember the encoded lines of headers that recur unchanged (an action, no-store):
    ``encode`` then writes them without checking and formatting each again."""
    for name, value in headers:
        if (len(_LINES) < _MAX_LINES and len(value) <= _MAX_LINE_VALUE and _safe(f"{name}: {value}")
                and name.lower() != "content-length"):
            _LINES[(name, value)] = f"{name}: {value}\r\n".encode("latin-1", "replace")


def _safe(line: str) -> bool:
    return "\n" not in line and "\r" not in line


def encode(reply: Reply, keep_alive: bool, head: bool) -> bytes:
    """The response bytes; ``head``: the headers only (a HEAD request)."""
    if not reply.headers and not reply.body and keep_alive:
        bare = _BARE.get(reply.status)
        if bare is not None:
            return bare
    parts = [_status_line(reply.status)]
    sized = False
    for header in reply.headers:
        name, value = header
        # Only short values are looked up: a long one (a challenge's data) is never there,
        # and hashing it would cost more than the lookup saves.
        line = _LINES.get(header) if len(value) <= _MAX_LINE_VALUE else None
        if line is None:
            text = f"{name}: {value}"
            if not _safe(text):
                log.error("dropped response header %r: it holds a line break", name)
                continue
            sized = sized or (len(name) == 14 and name.lower() == "content-length")
            line = f"{text}\r\n".encode("latin-1", "replace")
        parts.append(line)
    if not sized:
        parts.append(b"content-length: %d\r\n" % len(reply.body))
    if not keep_alive:
        parts.append(b"connection: close\r\n")
    parts.append(b"\r\n")
    if not head:
        parts.append(reply.body)
    return b"".join(parts)


class EdgeRequest:
    """One request as the service gets it: text decoded as latin-1 (what the bytes were), header
    names lower-case, headers in the order received, ``peer`` the address that connected."""

    __slots__ = ("headers", "method", "path", "peer", "query", "scheme")

    def __init__(self, method: str, path: str, query: str, headers: list[tuple[str, str]],
                 peer: str, scheme: str = "http") -> None:
        self.method = method
        self.path = path  # percent-decoded (UTF-8), as an ASGI server gives it
        self.query = query
        self.headers = headers
        self.peer = peer
        self.scheme = scheme


class _Request:
    """What the parser has seen of the request being read: one per connection, reset at each
    request's start (its headers list goes on to the EdgeRequest, decoded as they come)."""

    __slots__ = ("body", "body_size", "expect", "head", "head_size", "headers", "keep_alive",
                 "method", "refuse", "url")

    def __init__(self) -> None:
        self.url = b""
        self.headers: list[object] = []  # (name, value) pairs of str (see on_header)
        self.head_size = 0
        self.refuse = 0  # 431: the head is too large
        self.body: list[bytes] | None = None  # None: no body yet; _TOO_LARGE: over max_body
        self.body_size = 0
        self.method = "GET"
        self.head = False
        self.keep_alive = True
        self.expect = False  # Expect: 100-continue


_TOO_LARGE: list[bytes] = []  # a request's body marker: over max_body, discarded


class _Connection:
    """An asyncio protocol by its methods (the loop asks for no base class): compiled with
    mypyc, a native class cannot derive from asyncio.Protocol."""

    def __init__(self, server: EdgeServer) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.peer = ""
        self.request = _Request()
        # The headers of the last request by their place, raw and decoded: a proxy sends the
        # same names in the same order, and most values again (host, agent, accept...), so a
        # header equal to the one at its place last time is that one's decoded pair, reused.
        self.seen: list[tuple[bytes, bytes, str, object]] = []  # raw name, raw value, name, pair
        # The last request's headers by place, when the next request with the same names may be
        # read without httptools (_plain): "Name: ", "Name: value", the lower-case name and the
        # decoded pair. ``names`` empty: it may not. ``first``: the last request line _plain
        # read, ``target`` its method, path and query.
        self.names: list[str] = []
        self.lines: list[str] = []
        self.texts: list[str] = []
        self.pairs: list[object] = []
        self.first = ""
        self.target = ("GET", "/", "")
        self.between = True  # the parser is at a request's start, the connection kept alive
        self.queue: deque[tuple[EdgeRequest, bytes | None, bool, bool]] = deque()
        self.waiting: asyncio.Task[None] | None = None
        self.refused = 0  # the status that ends this connection once the queue is answered
        self.closing = False
        self.paused_queue = self.paused_write = False
        self.last = 0.0
        self.timer: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and len(peer) >= 2:
            self.peer = str(peer[0])
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family == socket.AF_UNIX:
            self.peer = UNIX_PEER
        elif sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            try:  # answers are small: never wait on Nagle
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            except OSError:
                pass
        self.server.connections.add(self)
        self.last = self.loop.time()
        self.timer = self.loop.call_later(IDLE_TIMEOUT / 3, self._tick)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closing = True
        self.server.connections.discard(self)
        if self.timer is not None:
            self.timer.cancel()
        if self.waiting is not None:
            self.waiting.cancel()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self.closing or self.refused:
            return  # what follows a refused request is not read
        self.last = self.loop.time()
        if self.names and self.between and self._plain(data):
            if self.waiting is None:
                self._drain()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.refused = 400  # what was asked is answered, then the connection closed
        except httptools.HttpParserError:
            self.refused = 400
        if self.request.refuse:
            self.refused = self.request.refuse
        if self.waiting is None:
            self._drain()

    def eof_received(self) -> bool:
        """The client will send nothing more (nginx ends an idle kept-alive connection so): the
        transport closes (False); without this method asyncio logged each one as a fatal error.
        What the client asked before is answered first when the answer was at hand."""
        return False

    def pause_writing(self) -> None:
        self.paused_write = True
        self._reading()

    def resume_writing(self) -> None:
        self.paused_write = False
        self._reading()

    # -- httptools callbacks (they must not raise: they only record) ----------------------

    def on_message_begin(self) -> None:
        self.between = False
        request = self.request  # reset in place: no object made and freed per request
        request.url = b""
        request.headers = []
        request.head_size = request.refuse = request.body_size = 0
        request.body = None
        request.method = "GET"
        request.head = request.expect = False
        request.keep_alive = True

    def on_url(self, url: bytes) -> None:
        request = self.request
        request.head_size += len(url)
        if request.head_size > MAX_HEAD:
            request.refuse = request.refuse or 414
        else:
            request.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        request = self.request
        request.head_size += len(name) + len(value) + 4
        if request.refuse:
            return
        if request.head_size > MAX_HEAD or len(request.headers) >= MAX_HEADERS:
            request.refuse = 431
        else:  # decoded here: one list of text pairs, handed to the EdgeRequest as it is
            headers, seen = request.headers, self.seen
            at = len(headers)
            if at < len(seen):
                last = seen[at]
                if last[1] == value and last[0] == name:
                    headers.append(last[3])  # as at this place in the last request: no decoding
                    return
                text = last[2] if last[0] == name else _name(name)
            else:
                text = _name(name)
            # An object, not a tuple[str, str]: compiled, that would be a C struct, boxed into
            # a new tuple at every use; as an object, the list and ``seen`` share this one.
            header: object = (text, value.decode("latin-1"))
            headers.append(header)
            if text == "expect":
                request.expect = value.lower() == b"100-continue"
            elif len(value) <= _MAX_SEEN:
                if at < len(seen):
                    seen[at] = (name, value, text, header)
                elif at == len(seen):
                    seen.append((name, value, text, header))

    def on_headers_complete(self) -> None:
        request, parser = self.request, self.parser
        method = parser.get_method()
        request.method = _METHODS.get(method) or method.decode("ascii", "replace")
        request.head = request.method == "HEAD"
        request.keep_alive = parser.should_keep_alive() and not parser.should_upgrade()
        if request.expect and self.transport is not None and not self.queue and self.waiting is None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # curl waits 1 s without it

    def on_body(self, chunk: bytes) -> None:
        request = self.request
        if request.body is _TOO_LARGE:
            return
        request.body_size += len(chunk)
        if request.body_size > self.server.max_body:
            request.body = _TOO_LARGE
        elif request.body is None:
            request.body = [chunk]
        else:
            request.body.append(chunk)

    def on_message_complete(self) -> None:
        request = self.request
        self.between = request.keep_alive
        self._plain_from(request)
        if request.refuse or self.refused or self.closing:
            return
        url = request.url
        # Split as text (latin-1 keeps every byte): str methods are native when compiled.
        if url[:1] == b"/":  # origin form, what proxies send: no need for a URL parser
            path, query = _origin(url.decode("latin-1"))
        else:
            try:
                parsed = httptools.parse_url(url)
            except httptools.HttpParserInvalidURLError:
                self.refused = 400
                return
            path = (parsed.path or b"/").decode("latin-1")
            query = (parsed.query or b"").decode("latin-1")
            if "%" in path:
                path = unquote(path, encoding="utf-8", errors="replace")
        body = request.body
        self._queued(EdgeRequest(request.method, path, query, cast(list[tuple[str, str]], request.headers),
                                 self.peer),
                     b"" if body is None else None if body is _TOO_LARGE else b"".join(body),
                     request.keep_alive, request.head)

    def _queued(self, request: EdgeRequest, body: bytes | None, keep_alive: bool, head: bool) -> None:
        self.queue.append((request, body, keep_alive, head))
        if len(self.queue) >= MAX_PIPELINED:
            self.paused_queue = True
            self._reading()

    # -- requests read without httptools --------------------------------------------------------

    def _plain_from(self, request: _Request) -> None:
        """Ready _plain for a next request with the header names of the one just parsed (in the
        same order), when every header is the one kept in ``seen`` at its place (so short enough,
        and no Expect) and none of them _FRAMING; else _plain declines until one is."""
        headers, seen = request.headers, self.seen
        self.names = []
        if request.refuse or not request.keep_alive or request.body is not None or len(headers) > len(seen):
            return
        names: list[str] = []
        lines: list[str] = []
        texts: list[str] = []
        for at in range(len(headers)):
            name, value, text, pair = seen[at]
            if pair is not headers[at] or text in _FRAMING:
                return
            prefix = name.decode("latin-1") + ": "
            names.append(prefix)
            lines.append(prefix + value.decode("latin-1"))
            texts.append(text)
        self.names, self.lines, self.texts, self.pairs = names, lines, texts, list(headers)

    def _plain(self, data: bytes) -> bool:
        """Queue the request ``data`` holds when it is exactly one request in the plainest form,
        with the last request's header names in the same order: ``METHOD /target HTTP/1.1``,
        then ``Name: value`` lines (printable ASCII, no space before a value), CRLF line ends,
        nothing after. httptools reads that the same way (tests/test_edge_server.py compares
        them); anything else is left to httptools (False). A header line equal to the last one
        at its place is that one's decoded pair, as in on_header. Split as text (latin-1 keeps
        every byte): str methods are native when compiled, bytes methods are not."""
        if len(data) > _MAX_PLAIN:
            return False
        text = data.decode("latin-1")
        if not text.isascii():
            return False
        parts = text.split("\r\n")
        lines, pairs = self.lines, self.pairs
        count = len(lines)
        if len(parts) != count + 3 or parts[count + 2] or parts[count + 1]:
            return False  # not one head ending in an empty line, with as many header lines
        first = parts[0]
        if first != self.first:  # the request line: nginx sends the same one each time
            space = first.find(" ")
            method = _TEXT_METHODS.get(first[:space]) if space > 0 else None
            url = first[space + 1:-9]
            if (method is None or not first.endswith(" HTTP/1.1") or url[:1] != "/" or " " in url
                    or not url.isprintable()):
                return False
            path, query = _origin(url)
            self.first, self.target = first, (method, path, query)
        for at in range(count):
            line = parts[at + 1]
            if line == lines[at]:  # as last time: its pair stays
                continue
            prefix = self.names[at]
            if not line.startswith(prefix):
                return False
            value = line[len(prefix):]
            if value[:1] == " " or not value.isprintable():
                return False
            header: object = (self.texts[at], value)
            pairs[at] = header  # true of that line whatever comes next: kept even if declined
            lines[at] = line
        method, path, query = self.target
        self._queued(EdgeRequest(method, path, query, cast(list[tuple[str, str]], pairs[:]), self.peer),
                     b"", True, method == "HEAD")
        return True

    # -- answering -------------------------------------------------------------------------

    def _drain(self) -> None:
        """Answer queued requests in order until one must wait (a task takes over)."""
        answer = self.server.answer
        while self.queue and not self.closing:
            request, body, keep_alive, head = self.queue.popleft()
            try:
                reply = answer(request, body)
            except Exception:  # the service promises not to raise; never trust that with a socket
                log.exception("the decision service raised")
                reply = Reply(500, (), b"")
            if not isinstance(reply, Reply):
                self.waiting = self.loop.create_task(self._finish(reply, keep_alive, head))
                return
            self._send(reply, keep_alive, head)
        if self.paused_queue and not self.queue:
            self.paused_queue = False
            self._reading()
        if self.refused and not self.closing:
            phrase = HTTPStatus(self.refused).phrase.lower().encode()
            self._send(Reply(self.refused, (("content-type", "text/plain"),), phrase), False, False)

    async def _finish(self, pending: Awaitable[Reply], keep_alive: bool, head: bool) -> None:
        try:
            reply = await pending
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("the decision service raised")
            reply = Reply(500, (), b"")
        self.waiting = None
        if not self.closing:
            self.last = self.loop.time()  # a late answer: idle from now (data_received set it before)
            self._send(reply, keep_alive, head)
            self._drain()

    def _send(self, reply: Reply, keep_alive: bool, head: bool) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        keep_alive = keep_alive and not self.server.stopping
        transport.write(encode(reply, keep_alive, head))
        if not keep_alive:
            self.closing = True
            self.queue.clear()
            transport.close()

    def _reading(self) -> None:
        transport = self.transport
        if transport is None or self.closing:
            return
        if self.paused_queue or self.paused_write:
            transport.pause_reading()
        else:
            transport.resume_reading()

    def _tick(self) -> None:
        if self.closing:
            return
        if self.waiting is None and not self.queue and self.loop.time() - self.last > IDLE_TIMEOUT:
            self.close()
            return
        self.timer = self.loop.call_later(IDLE_TIMEOUT / 3, self._tick)

    def idle(self) -> bool:
        return self.waiting is None and not self.queue

    def close(self) -> None:
        self.closing = True
        if self.transport is not None:
            self.transport.close()


def bind_unix(path: str) -> socket.socket:
    """A listening Unix socket at ``path``, connectable by every local user (as a loopback port
    is: restrict who may ask with the permissions of the directory it is in). A socket file left
    by a server that is gone is replaced; one that still answers is an error (OSError)."""
    if os.path.exists(path):
        if not stat.S_ISSOCK(os.stat(path).st_mode):
            raise OSError(errno.EEXIST, f"{path} exists and is not a socket")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(path)
            except OSError:
                os.unlink(path)  # nobody listens: stale
            else:
                raise OSError(errno.EADDRINUSE, f"another server listens on {path}")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.bind(path)
        os.chmod(path, 0o666)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class EdgeServer:
    """``serve([socket])`` until ``should_exit``; ``started`` once listening (uvicorn's shape,
    so serve.serve_pair runs it next to the admin app's uvicorn)."""

    def __init__(self, answer: Answerer, max_body: int = 8192) -> None:
        self.answer = answer
        self.max_body = max_body
        self.started = False
        self.should_exit = False
        self.stopping = False
        self.connections: set[_Connection] = set()

    def _connection(self) -> asyncio.Protocol:
        return cast(asyncio.Protocol, _Connection(self))

    async def serve(self, sockets: list[socket.socket]) -> None:
        loop = asyncio.get_running_loop()
        paths = [str(s.getsockname()) for s in sockets if s.family == socket.AF_UNIX]
        servers = [await (loop.create_unix_server(self._connection, sock=sock)
                          if sock.family == socket.AF_UNIX
                          else loop.create_server(self._connection, sock=sock))
                   for sock in sockets]
        self.started = True
        try:
            while not self.should_exit:
                await asyncio.sleep(0.1)
        finally:
            self.stopping = True
            for server in servers:
                server.close()
            for conn in list(self.connections):
                if conn.idle():
                    conn.close()
            deadline = loop.time() + GRACE
            while any(not c.idle() for c in self.connections) and loop.time() < deadline:
                await asyncio.sleep(0.05)
            for conn in list(self.connections):
                conn.close()
            for server in servers:
                await server.wait_closed()
            for path in paths:  # the next start finds no stale socket file
                with contextlib.suppress(OSError):
                    os.unlink(path)
