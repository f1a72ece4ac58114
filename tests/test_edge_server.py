"""The decision service's own HTTP/1.1 server (hosts/edge_server.py) over real loopback sockets:
keep-alive, pipelining in order (also behind an answer that must wait), limits, bad input,
bodies, and shutdown; and, fed in-process, requests read without httptools against the same
bytes read by httptools. The decision service itself runs in it in test_e2e_nginx.py."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
from collections.abc import Awaitable, Iterator
from pathlib import Path

import pytest

from scrapeshield.actions.responses import Reply
from scrapeshield.hosts.edge_server import (
    MAX_HEAD,
    UNIX_PEER,
    EdgeRequest,
    EdgeServer,
    _Connection,
    bind_unix,
    encode,
    header_lines,
)


def answer(request: EdgeRequest, body: bytes | None) -> Reply | Awaitable[Reply]:
    """Echoes what the server parsed; ``/slow`` answers after a delay (an awaitable)."""
    headers = dict(request.headers)
    text = (f"{request.method} {request.path} q={request.query} peer={request.peer} "
            f"x={headers.get('x-test', '-')} body={'TOO LARGE' if body is None else body.decode()}"
            ).encode()
    if request.path == "/slow":
        async def later() -> Reply:
            await asyncio.sleep(0.2)
            return Reply(200, (("x-kind", "slow"),), text)
        return later()
    if request.path == "/empty":
        return Reply(204, (), b"")
    if request.path == "/broken":
        raise RuntimeError("the service broke its promise")
    return Reply(200, (("content-type", "text/plain"),), text)


class Running:
    def __init__(self, server: EdgeServer, sock: socket.socket | None = None) -> None:
        self.server = server
        if sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
            sock.bind(("127.0.0.1", 0))
        self.sock = sock
        self.port = sock.getsockname()[1] if sock.family != socket.AF_UNIX else 0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        for _ in range(200):
            if server.started:
                break
            threading.Event().wait(0.01)
        assert server.started

    def _run(self) -> None:
        try:
            asyncio.run(self.server.serve([self.sock]))
        finally:
            self.done.set()

    def stop(self) -> None:
        self.server.should_exit = True
        assert self.done.wait(10)
        self.sock.close()

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=5)


@pytest.fixture
def edge() -> Iterator[Running]:
    running = Running(EdgeServer(answer, max_body=64))
    yield running
    running.stop()


def read_responses(conn: socket.socket, count: int) -> list[tuple[int, dict[str, str], bytes]]:
    """``count`` responses, parsed by Content-Length."""
    data = b""
    out: list[tuple[int, dict[str, str], bytes]] = []
    while len(out) < count:
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                raise AssertionError(f"closed after {len(out)} responses: {data!r}")
            data += chunk
        head, _, data = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        size = int(headers["content-length"])
        while len(data) < size:
            data += conn.recv(65536)
        out.append((int(lines[0].split()[1]), headers, data[:size]))
        data = data[size:]
    return out


def closed(conn: socket.socket) -> bool:
    try:
        return conn.recv(1) == b""
    except ConnectionResetError:
        return True


def test_keep_alive_answers_many_requests_on_one_connection(edge: Running) -> None:
    with edge.connect() as conn:
        for n in range(3):
            conn.sendall(f"GET /a%20b/{n}?x=1 HTTP/1.1\r\nHost: h\r\nX-Test: {n}\r\n\r\n".encode())
            [(status, headers, body)] = read_responses(conn, 1)
            assert status == 200 and "connection" not in headers
            assert body == f"GET /a b/{n} q=x=1 peer=127.0.0.1 x={n} body=".encode()


def test_pipelined_requests_are_answered_in_order_even_behind_a_slow_one(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n"
                     b"GET /fast HTTP/1.1\r\nHost: h\r\n\r\n"
                     b"GET /empty HTTP/1.1\r\nHost: h\r\n\r\n")
        answers = read_responses(conn, 3)
    assert [a[0] for a in answers] == [200, 200, 204]
    assert answers[0][1]["x-kind"] == "slow" and answers[1][2].startswith(b"GET /fast")


def test_connection_close_and_http_1_0_end_the_connection(edge: Running) -> None:
    for request in (b"GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", b"GET / HTTP/1.0\r\n\r\n"):
        with edge.connect() as conn:
            conn.sendall(request)
            [(status, headers, _)] = read_responses(conn, 1)
            assert status == 200 and headers["connection"] == "close"
            assert closed(conn)


def test_head_gets_headers_only(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\nGET /y HTTP/1.1\r\nHost: h\r\n\r\n")
        data = b""
        while data.count(b"HTTP/1.1 200") < 2 or not data.endswith(b"body="):
            data += conn.recv(65536)
    first, _, rest = data.partition(b"\r\n\r\n")
    assert b"content-length: " in first and rest.startswith(b"HTTP/1.1 200 OK")


def test_bodies_by_length_and_chunked_and_too_large(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello"
                     b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
                     b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 100\r\n\r\n" + b"z" * 100
                     + b"GET /after HTTP/1.1\r\nHost: h\r\n\r\n")
        bodies = [a[2] for a in read_responses(conn, 4)]
    assert bodies[0].endswith(b"body=hello") and bodies[1].endswith(b"body=abcde")
    assert bodies[2].endswith(b"body=TOO LARGE") and bodies[3].startswith(b"GET /after")


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"NOT HTTP AT ALL\r\n\r\n", 400),
    (b"GET / HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * MAX_HEAD + b"\r\n\r\n", 431),
    (b"GET / HTTP/1.1\r\n" + b"".join(b"X-%d: v\r\n" % i for i in range(200)) + b"\r\n", 431),
    (b"GET /" + b"a" * MAX_HEAD + b" HTTP/1.1\r\nHost: h\r\n\r\n", 414),
    (b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", 200),
])
def test_bad_or_oversized_requests_are_refused_and_the_connection_closed(
    edge: Running, request_bytes: bytes, status: int
) -> None:
    with edge.connect() as conn:
        conn.sendall(b"GET /first HTTP/1.1\r\nHost: h\r\n\r\n" + request_bytes)
        answers = read_responses(conn, 2)
        assert answers[0][0] == 200 and answers[0][2].startswith(b"GET /first")
        assert answers[1][0] == status
        if status == 200:  # an upgrade is answered as a request, never upgraded
            assert answers[1][2].startswith(b"GET /chat")
        assert closed(conn)


def test_a_client_that_closes_its_side_is_answered_and_nothing_is_logged_as_fatal(
    edge: Running, caplog: pytest.LogCaptureFixture
) -> None:
    """nginx ends idle kept-alive connections with a FIN: that is no error."""
    with edge.connect() as conn:
        conn.sendall(b"GET /last HTTP/1.1\r\nHost: h\r\n\r\n")
        conn.shutdown(socket.SHUT_WR)
        [(status, _, body)] = read_responses(conn, 1)
        assert status == 200 and body.startswith(b"GET /last")
        assert closed(conn)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_a_service_that_raises_gets_a_500_and_the_server_carries_on(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"GET /broken HTTP/1.1\r\nHost: h\r\n\r\nGET /ok HTTP/1.1\r\nHost: h\r\n\r\n")
        assert [a[0] for a in read_responses(conn, 2)] == [500, 200]


def test_shutdown_closes_idle_connections_and_lets_a_waiting_answer_finish() -> None:
    running = Running(EdgeServer(answer))
    idle = running.connect()
    busy = running.connect()
    busy.sendall(b"GET /slow HTTP/1.1\r\nHost: h\r\n\r\n")
    threading.Event().wait(0.05)  # the slow answer is under way
    running.stop()
    [(status, headers, _)] = read_responses(busy, 1)
    assert status == 200 and headers["connection"] == "close"
    assert closed(idle) and closed(busy)
    idle.close()
    busy.close()


def test_absolute_form_and_bad_urls(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"GET http://example.org/p%C3%A9?q=1 HTTP/1.1\r\nHost: h\r\n\r\n")
        [(status, _, body)] = read_responses(conn, 1)
    assert status == 200 and body.startswith("GET /pé q=q=1 ".encode())
    with edge.connect() as conn:
        conn.sendall(b"GET http://[::1 HTTP/1.1\r\nHost: h\r\n\r\n")
        [(status, _, _)] = read_responses(conn, 1)
        assert status == 400 and closed(conn)


@pytest.mark.parametrize(("target", "seen"), [
    (b"/p%C3%A9%2Fx#frag", "/pé/x q= "),  # the fragment dropped
    (b"/p?q=%41#f", "/p q=q=%41#f "),  # the query as sent, undecoded
    (b"/a%zz/%e9?", "/a%zz/\ufffd q= "),  # bad escapes kept, bad UTF-8 replaced
    (b"/plain", "/plain q= "),
])
def test_origin_form_paths_are_decoded_and_queries_kept(edge: Running, target: bytes, seen: str) -> None:
    with edge.connect() as conn:
        conn.sendall(b"GET " + target + b" HTTP/1.1\r\nHost: h\r\n\r\n")
        [(status, _, body)] = read_responses(conn, 1)
    assert status == 200 and body.startswith(f"GET {seen}".encode())


def test_expect_100_continue_is_answered_before_the_body(edge: Running) -> None:
    with edge.connect() as conn:
        conn.sendall(b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
        assert conn.recv(64) == b"HTTP/1.1 100 Continue\r\n\r\n"
        conn.sendall(b"abc")
        [(status, _, body)] = read_responses(conn, 1)
    assert status == 200 and body.endswith(b"body=abc")


def test_unix_socket_serves_counts_as_this_machine_and_is_removed_at_shutdown(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sock"
    path.write_text("not a socket")
    with pytest.raises(OSError, match="not a socket"):
        bind_unix(str(path))
    path.unlink()
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))  # a socket file nobody listens on: replaced
    stale.close()
    running = Running(EdgeServer(answer), bind_unix(str(path)))
    try:
        with pytest.raises(OSError, match="another server listens"):
            bind_unix(str(path))
        with socket.socket(socket.AF_UNIX) as conn:
            conn.settimeout(5)
            conn.connect(str(path))
            for n in range(2):  # keep-alive as over TCP
                conn.sendall(f"GET /u/{n} HTTP/1.1\r\nHost: h\r\n\r\n".encode())
                [(status, _, body)] = read_responses(conn, 1)
                assert status == 200 and body.startswith(f"GET /u/{n} q= peer={UNIX_PEER} ".encode())
    finally:
        running.stop()
    assert not path.exists()


def headers_echo(request: EdgeRequest, body: bytes | None) -> Reply:
    """Answers with the request's headers, one per line, as the server decoded them."""
    return Reply(200, (), "\n".join(f"{n}={v}" for n, v in request.headers).encode("latin-1"))


def test_headers_are_decoded_afresh_where_they_differ_from_the_last_request() -> None:
    """A connection reuses the decoded header of the last request at the same place only when
    name and value are the same bytes: every change of value, name, case, count or order shows."""
    running = Running(EdgeServer(headers_echo))
    heads = [
        [("Host", "h"), ("X-Original-URI", "/a"), ("User-Agent", "UA 1")],
        [("Host", "h"), ("X-Original-URI", "/b"), ("User-Agent", "UA 1")],  # one value differs
        [("Host", "h"), ("X-Original-Uri", "/b"), ("User-Agent", "UA 1")],  # a name's case
        [("Host", "h"), ("User-Agent", "UA 1"), ("X-Original-URI", "/b")],  # the order
        [("Host", "h")],  # fewer
        [("Host", "h"), ("Accept", "*/*"), ("Accept", "*/*"), ("X-Big", "é" * 2000)],  # more, long
        [("Host", "h"), ("Accept", "*/*"), ("Accept", "*/*"), ("X-Big", "é" * 2000)],  # all again
        [("Host", "h"), ("Accept", "text/html"), ("Accept", "*/*"), ("X-Big", "x")],
    ]
    try:
        with running.connect() as conn:
            for head in heads:
                lines = "".join(f"{n}: {v}\r\n" for n, v in head)
                conn.sendall(f"GET / HTTP/1.1\r\n{lines}\r\n".encode("latin-1"))
                [(status, _, body)] = read_responses(conn, 1)
                expected = "\n".join(f"{n.lower()}={v}" for n, v in head)
                assert status == 200 and body.decode("latin-1") == expected
    finally:
        running.stop()


def test_an_expect_header_is_seen_in_every_request_that_sends_it(edge: Running) -> None:
    with edge.connect() as conn:
        for _ in range(2):  # the same header at the same place: still answered with 100 Continue
            conn.sendall(b"POST /e HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n")
            assert conn.recv(65536).startswith(b"HTTP/1.1 100 Continue\r\n\r\n")
            conn.sendall(b"abc")
            [(status, _, body)] = read_responses(conn, 1)
            assert status == 200 and body.endswith(b"body=abc")


def test_encoded_header_lines_remembered_and_checked() -> None:
    header_lines([("x-scrapeshield-action", "challenge"), ("x-bad", "a\r\nb"), ("content-length", "9")])
    reply = Reply(401, (("x-scrapeshield-action", "challenge"), ("x-data", '{"a": "' + "b" * 300 + '"}'),
                        ("x-evil", "a\r\nset-cookie: x=1")), b"")
    data = encode(reply, True, False)
    assert data == (b"HTTP/1.1 401 Unauthorized\r\nx-scrapeshield-action: challenge\r\n"
                    b'x-data: {"a": "' + b"b" * 300 + b'"}\r\ncontent-length: 0\r\n\r\n')
    # a header with a line break is never remembered, so never sent; nor is a content-length
    assert encode(Reply(200, (("x-bad", "a\r\nb"),), b"ok"), True, False).count(b"x-bad") == 0
    sized = encode(Reply(200, (("content-length", "9"),), b"ok"), True, False)
    assert sized.count(b"content-length") == 1


# -- requests read without httptools (edge_server._Connection._plain) -------------------------

class Collecting:
    """A transport for a connection fed in-process: keeps what the server writes."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.sent.append(data)

    def get_extra_info(self, name: str, default: object = None) -> object:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


def full_echo(request: EdgeRequest, body: bytes | None) -> Reply:
    """Everything the server parsed, one field a line."""
    lines = [request.method, request.path, request.query, request.peer,
             *(f"{n}={v}" for n, v in request.headers),
             "TOO LARGE" if body is None else body.decode("latin-1")]
    return Reply(200, (), "\n".join(lines).encode("latin-1"))


def fed(reads: list[bytes], prime: bytes = b"") -> tuple[bytes, bool, bytes]:
    """What a connection writes for ``reads`` (after answering ``prime``, when given), whether
    it closed, and the method httptools last parsed (a request read without it leaves that)."""
    async def run() -> tuple[bytes, bool, bytes]:
        conn = _Connection(EdgeServer(full_echo, max_body=64))
        transport = Collecting()
        conn.connection_made(transport)  # type: ignore[arg-type]
        if prime:
            conn.data_received(prime)
            assert transport.sent and b"\r\n\r\nPOST\n" in transport.sent[-1]
            transport.sent.clear()
        for data in reads:
            conn.data_received(data)
        method = conn.parser.get_method()
        conn.connection_lost(None)
        return b"".join(transport.sent), transport.closed, method
    return asyncio.run(run())


def subrequest(uri: bytes = b"/u/1", ip: bytes = b"10.0.0.1", method: bytes = b"GET",
               extra: bytes = b"") -> bytes:
    """As nginx sends an auth subrequest (bench/hostcost.py's _subrequest)."""
    return (method + b" /.scrapeshield/auth-request HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
            b"X-Original-URI: " + uri + b"\r\nX-Original-Method: GET\r\n"
            b"X-Forwarded-For: " + ip + b", 127.0.0.1\r\nX-Forwarded-Proto: http\r\n" + extra +
            b"User-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,*/*;q=0.8\r\n\r\n")


# The connection's first request, read by httptools: a POST (without a body) so that a next
# request read without httptools shows (the parser's method stays POST).
PRIME = subrequest(method=b"POST")


def test_a_request_like_the_last_one_is_read_without_httptools_and_the_same() -> None:
    for data in (subrequest(), subrequest(b"/a%C3%A9/b?q=%41&r=%zz#frag", b"10.1.2.3"),
                 subrequest(b"/~!$&'()*+,;=:@[]{}|\\^`\"<>"), subrequest(method=b"HEAD"),
                 subrequest(b"/x").replace(b"Accept: text/html,*/*;q=0.8", b"Accept: "),
                 subrequest(b"/x").replace(b"Accept: text/html,*/*;q=0.8", b"Accept: a b  "),
                 subrequest(b"/" + b"x" * 5000)):
        written, closed, method = fed([data], PRIME)
        assert method == b"POST", data  # httptools was not asked
        assert (written, closed) == fed([data])[:2], data  # as httptools reads it on its own
        assert written.startswith(b"HTTP/1.1 200 OK") and not closed


def test_two_like_requests_in_a_row_reuse_and_refresh_values() -> None:
    reads = [subrequest(b"/1", b"10.0.0.1"), subrequest(b"/2", b"10.0.0.1"), subrequest(b"/2", b"10.9.9.9"),
             subrequest(b"/1", b"10.0.0.1")]
    written, _, method = fed(reads, PRIME)
    assert method == b"POST"
    assert written == b"".join(fed([data])[0] for data in reads)


LIKE = subrequest()


@pytest.mark.parametrize("reads", [
    [LIKE[:40], LIKE[40:]],  # a split read
    [LIKE[:-2], LIKE[-2:]],  # split inside the final CRLF
    [LIKE + LIKE],  # pipelined
    [LIKE + subrequest(b"/other")[:30]],  # pipelined, the next one partial
    [subrequest(extra=b"X-Added: 1\r\n")],  # a header more
    [LIKE.replace(b"X-Forwarded-Proto: http\r\n", b"")],  # a header less
    [LIKE.replace(b"Host: 127.0.0.1:8080\r\nX-Original-URI: /u/1\r\n",
                  b"X-Original-URI: /u/1\r\nHost: 127.0.0.1:8080\r\n")],  # reordered
    [LIKE.replace(b"X-Original-URI", b"X-Original-Uri")],  # a name's case
    [LIKE.replace(b"X-Original-URI: ", b"X-Original-URI:")],  # no space after the colon
    [LIKE.replace(b"X-Original-URI: ", b"X-Original-URI:  ")],  # two
    [LIKE.replace(b"X-Original-URI: ", b"X-Original-URI :")],
    [LIKE.replace(b"X-Original-URI: /u/1", b"X-Original-URI: /u/1\t")],  # a tab
    [LIKE.replace(b"/u/1", b"/u/\xc3\xa9")],  # non-ASCII, in the URI and its header
    [LIKE.replace(b"X-Original-URI: /u/1", b"X-Original-URI: /u/\xe9")],
    [LIKE.replace(b"X-Original-URI: /u/1", b"X-Original-URI: /u\x00/1")],
    [LIKE.replace(b"X-Original-URI: /u/1", b"X-Original-URI: /u\x7f/1")],
    [LIKE.replace(b"X-Original-URI: /u/1\r\n", b"X-Original-URI: /u/1\n")],  # a bare LF
    [LIKE.replace(b"X-Original-URI: /u/1\r\n", b"X-Original-URI: /u/1\r")],  # a bare CR
    [LIKE.replace(b"X-Original-URI: /u/1\r\n", b"X-Original-URI: /u/1\r\n and more\r\n")],  # obs-fold
    [LIKE.replace(b"X-Original-URI: /u/1\r\n", b"X-Original-URI: /u/1\r\nSet-Cookie: a\r\n")],
    [LIKE.replace(b"\r\n", b"\n")],
    [LIKE.replace(b"HTTP/1.1", b"HTTP/1.0")],
    [LIKE.replace(b"GET ", b"get ")],
    [LIKE.replace(b"GET ", b"BREW ")],
    [LIKE.replace(b"GET ", b"GET  ")],
    [LIKE.replace(b"GET /.scrapeshield/auth-request", b"GET http://h/.scrapeshield/auth-request")],
    [LIKE.replace(b"/.scrapeshield/auth-request", b"/.scrapeshield/auth request")],
    [LIKE.replace(b"/.scrapeshield/auth-request", b"/.scrapeshield/auth\x01request")],
    [b"\r\n" + LIKE],  # an empty line before the request
    [LIKE + b"\r\n"],
    [LIKE[:-2] + b"Content-Length: 3\r\n\r\nabc"],  # a body
    [LIKE[:-2] + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"],
    [LIKE.replace(b"Accept: text/html,*/*;q=0.8", b"Accept: " + b"a" * 20000)],  # too large to be read so
])
def test_anything_unusual_is_read_by_httptools_as_before(reads: list[bytes]) -> None:
    written, closed, method = fed(reads, PRIME)
    assert method != b"POST" or closed  # httptools read it (a refusal leaves its method)
    assert (written, closed) == fed(reads)[:2]


@pytest.mark.parametrize("prime", [
    PRIME[:-2] + b"Content-Length: 0\r\n\r\n",  # framing headers: the next request is read by httptools
    PRIME[:-2] + b"Connection: keep-alive\r\n\r\n",
    PRIME[:-2] + b"Expect: 100-continue\r\n\r\n",
    PRIME.replace(b"X-Original-URI: /u/1", b"X-Original-URI: " + b"y" * 2000),  # not kept in seen
])
def test_after_a_request_with_framing_or_long_headers_the_next_is_read_by_httptools(prime: bytes) -> None:
    like = prime.replace(b"POST ", b"GET ")
    written, closed, method = fed([like], prime)
    assert method == b"GET" and (written, closed) == fed([like])[:2]


def test_after_connection_close_nothing_more_is_read() -> None:
    prime = PRIME.replace(b"HTTP/1.1", b"HTTP/1.0")
    assert fed([LIKE.replace(b"HTTP/1.1", b"HTTP/1.0")], prime)[0] == b""  # closed after the prime


def test_random_changes_to_a_like_request_are_read_as_httptools_reads_them() -> None:
    """Byte changes anywhere in a request like the last one: whatever the connection does, it is
    what httptools alone makes of the same bytes (an answer alike, or the same refusal)."""
    rng = random.Random(7)
    alphabet = b" \t\r\n\x00\x7f\x80\xff:;/?#%aZ0-"
    for _ in range(1500):
        data = bytearray(subrequest(b"/u/%d" % rng.randrange(100)))
        for _ in range(rng.randrange(1, 3)):
            at = rng.randrange(len(data))
            kind = rng.randrange(3)
            if kind == 0:
                data[at] = rng.choice(alphabet)
            elif kind == 1:
                data.insert(at, rng.choice(alphabet))
            else:
                del data[at]
        written, closed, _ = fed([bytes(data)], PRIME)
        assert (written, closed) == fed([bytes(data)])[:2], bytes(data)


def test_requests_read_without_httptools_keep_their_own_headers_while_queued(edge: Running) -> None:
    """Requests waiting behind a slow answer each keep the headers they came with, though the
    connection reuses and updates the last request's pairs as the next ones are read."""
    with edge.connect() as conn:
        for n in range(4):  # separate reads; from the second on, like the first
            conn.sendall(f"GET /slow HTTP/1.1\r\nHost: h\r\nX-Test: {n}\r\n\r\n".encode())
            threading.Event().wait(0.02)
        answers = read_responses(conn, 4)
    assert [a[2] for a in answers] == [f"GET /slow q= peer=127.0.0.1 x={n} body=".encode() for n in range(4)]
