"""Where a host form's CPU goes, in-process: the host adapter itself versus what it calls.

The throughput benches (nginx.py, wsgi.py) say what a request costs in all; this splits the
cost of the same traffic (wrk-clients.lua's, generated here) by part, with thread CPU time
around each call: the context builder, the engine's decision (without its listeners), the
decision listeners (event recorder, counters, monitor), the challenge page, the application
(WSGI), and what is left, the host form itself (server/adapter code, parsing, replies). No
sockets: system calls, the event-writer thread and the server around the adapter are not in
these figures. What the timers cost, inside and outside their own readings, is measured and
taken off (a thread CPU clock read is a system call: about 0.9 µs here).
"""

from __future__ import annotations

import asyncio
import gc
import io
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

POLICY = Path(__file__).with_name("bench-policy.yaml")
ACTION = "X-Scrapeshield-Action"
UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")
CLIENT_HEADERS = (("User-Agent", UA), ("Accept", "text/html,*/*;q=0.8"),
                  ("Accept-Encoding", "gzip, deflate, br"), ("Accept-Language", "en-GB,en;q=0.9"),
                  ("Sec-Ch-Ua", '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"'),
                  ("Sec-Fetch-Mode", "navigate"))


def client(i: int) -> tuple[str, str]:
    """Request ``i`` of wrk-clients.lua: (client address, path)."""
    n = (i * 7919) % 100000
    ip = f"10.{n % 256}.{n // 256 % 256}.{n // 65536 + 1}"
    return ip, (f"/u/user{i % 10000}" if i % 3 == 0 else "/")


class Meter:
    """CPU seconds spent inside wrapped callables, by part, and how many calls each had."""

    def __init__(self) -> None:
        self.spent: dict[str, float] = {}
        self.calls: dict[str, int] = {}

    def wrap(self, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        clock, spent, calls = time.thread_time, self.spent, self.calls
        spent.setdefault(part, 0.0)
        calls.setdefault(part, 0)

        def timed(*args: Any) -> Any:
            start = clock()
            try:
                return fn(*args)
            finally:
                spent[part] += clock() - start
                calls[part] += 1

        return timed

    def reset(self) -> None:
        for part in self.spent:  # in place: the timers hold these dicts
            self.spent[part] = 0.0
            self.calls[part] = 0

    def leak(self, rounds: int = 20000) -> tuple[float, float]:
        """CPU seconds per timed call spent (inside, outside) its own timer. Inside: about one
        clock read, counted in the part timed; outside: the call into the wrapper and the rest
        of the reads, counted in "host" (or in the part timing this one). Both are taken off,
        as _summary does: time.thread_time is a system call (about 0.9 µs here), so four
        listeners timed one by one read about 3.5 µs a request more than they cost."""
        probe = Meter()
        noop = probe.wrap("noop", lambda: None)
        start = time.thread_time()
        for _ in range(rounds):
            noop()
        outside = time.thread_time() - start
        inside = probe.spent["noop"]
        return inside / rounds, max(0.0, (outside - inside) / rounds)


class _Contexts:
    def __init__(self, builder: Any, meter: Meter) -> None:
        self.build = meter.wrap("context", builder.build)
        self.from_environ = meter.wrap("context", builder.from_environ)
        self._builder = builder

    def __getattr__(self, name: str) -> Any:
        return getattr(self._builder, name)


class _Engine:
    """The shield's engine with decide/contexts timed (the compiled engine takes no new
    attributes). What the hosts read per request is forwarded directly, not by __getattr__,
    which would add its own cost to the host's part."""

    def __init__(self, engine: Any, meter: Meter) -> None:
        self._engine = engine
        self.decide = meter.wrap("engine", engine.decide)
        self.observe = engine.observe
        self.contexts = _Contexts(engine.contexts, meter)
        self.needs_await = engine.needs_await
        engine.listeners[:] = [meter.wrap("listeners", fn) for fn in engine.listeners]

    @property
    def policy(self) -> Any:
        return self._engine.policy

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def _shield(meter: Meter, data_dir: str) -> Any:
    from scrapeshield.runtime import Shield
    from scrapeshield.settings import Settings

    shield = Shield(Settings.resolve(data_dir=data_dir, policy_path=str(POLICY)))
    shield.start()  # the event writer drains the queue, on its own thread (not counted here)
    shield.engine = _Engine(shield.engine, meter)  # type: ignore[assignment]
    shield.challenge.page = meter.wrap("challenge_page", shield.challenge.page)  # type: ignore[method-assign]
    return shield


def _summary(meter: Meter, total: float, requests: int) -> dict[str, float]:
    inside, outside = meter.leak()
    parts = {k: (v - inside * meter.calls[k]) / requests * 1e6 for k, v in meter.spent.items()}
    # The engine's time includes its listeners' (they run inside decide), their timers' too.
    listened = parts.get("listeners", 0.0) + outside * meter.calls.get("listeners", 0) / requests * 1e6
    parts["engine"] = parts.get("engine", 0.0) - listened
    timers = (inside + outside) * sum(meter.calls.values()) / requests * 1e6
    parts["total"] = total / requests * 1e6 - timers
    parts["host"] = parts["total"] - sum(v for k, v in parts.items() if k != "total")
    return {k: round(v, 2) for k, v in parts.items()}


def _measured(run: Callable[[int, int], float], meter: Meter, warm: int, n: int) -> dict[str, float]:
    run(0, warm)
    meter.reset()
    gc.collect()
    return _summary(meter, run(warm, n), n)


# -- nginx auth_request → decision service -------------------------------------------------


def _subrequest(path: str, uri: str, ip: str, extra: Iterable[tuple[str, str]] = ()) -> bytes:
    """What nginx sends the decision service (captured from deploy/nginx/scrapeshield.conf)."""
    lines = [f"GET {path} HTTP/1.1", "Host: 127.0.0.1:8080", f"X-Original-URI: {uri}",
             "X-Original-Method: GET", f"X-Forwarded-For: {ip}, 127.0.0.1", "X-Forwarded-Proto: http",
             *(f"{k}: {v}" for k, v in extra), *(f"{k}: {v}" for k, v in CLIENT_HEADERS)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class LoopbackTransport:
    """What the edge server's protocol asks of a transport besides ``write``: a loopback peer,
    and no-ops for flow control and closing (the harnesses feed requests in-process)."""

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def close(self) -> None:
        pass

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass


class _Transport(LoopbackTransport):
    """Collects what the server writes; the status of the last reply is all nginx looks at."""

    def __init__(self) -> None:
        self.status = 0
        self.action = b""

    def write(self, data: bytes) -> None:
        self.status = int(data[9:12])
        if self.status == 403:  # the action goes on to the page request
            found = re.search(rb"\r\nx-scrapeshield-action: (\w+)", data)
            self.action = found.group(1) if found else b""



def edge(n: int = 20000) -> dict[str, float]:
    """µs per client request through the decision service as nginx asks it: the auth
    subrequest, and the page subrequest for each 403 (as error_page does; nginx fills in a
    challenge's page itself, from the 401's header).

    Two passes over the same requests, each on a fresh shield: the service whole (total), then
    what it calls, called directly and timed by part (context, engine, listeners, the challenge's
    data). The service may be compiled, when nothing inside it can be swapped for a timer, so
    the parts are not timed from within; host = total - parts."""
    from scrapeshield.actions.responses import HOLD_RULE
    from scrapeshield.hosts.auth_request import MAX_VERIFY_BODY, DecisionService
    from scrapeshield.hosts.edge_server import EdgeServer, _Connection
    from scrapeshield.runtime import Shield
    from scrapeshield.settings import Settings
    from scrapeshield.types import Action

    def fresh(data_dir: str) -> Any:
        shield = Shield(Settings.resolve(data_dir=data_dir, policy_path=str(POLICY)))
        shield.start()  # the event writer drains the queue, on its own thread (not counted here)
        return shield

    async def whole(data_dir: str) -> float:
        shield = fresh(data_dir)
        conn = _Connection(EdgeServer(DecisionService(shield).answer, MAX_VERIFY_BODY))
        transport = _Transport()
        conn.connection_made(transport)  # type: ignore[arg-type]

        def run(start: int, count: int) -> float:
            asked = []
            for i in range(start, start + count):
                ip, path = client(i)
                asked.append((ip, path, _subrequest("/.scrapeshield/auth-request", path, ip)))
            spent = 0.0
            for ip, path, data in asked:
                begin = time.thread_time()
                conn.data_received(data)
                if transport.status == 403:  # built only when needed, outside the timing
                    spent += time.thread_time() - begin
                    action = transport.action.decode()
                    page = _subrequest("/.scrapeshield/page", path, ip, [(ACTION, action)])
                    begin = time.thread_time()
                    conn.data_received(page)
                spent += time.thread_time() - begin
            return spent

        try:
            run(0, 3000)
            gc.collect()
            return run(3000, n) / n * 1e6
        finally:
            conn.connection_lost(None)
            shield.close()

    def parts(data_dir: str) -> dict[str, float]:
        meter = Meter()
        shield = fresh(data_dir)
        engine = shield.engine
        engine.listeners[:] = [meter.wrap("listeners", fn) for fn in engine.listeners]
        build = meter.wrap("context", engine.contexts.build)
        decide = meter.wrap("engine", engine.decide)
        page_data = meter.wrap("challenge_page", shield.challenge.page_data)
        extra = [(k.lower(), v) for k, v in CLIENT_HEADERS]

        def run(start: int, count: int) -> None:
            for i in range(start, start + count):
                ip, path = client(i)
                headers = [("host", "127.0.0.1:8080"), ("x-forwarded-for", f"{ip}, 127.0.0.1"),
                           ("x-forwarded-proto", "http"), *extra]
                ctx = build(shield.clock.now(), "127.0.0.1", "GET", path, headers, "http")
                decision = decide(ctx)
                if decision.action is Action.CHALLENGE or decision.rule == HOLD_RULE:
                    page_data(ctx.ip, ctx.user_agent, path)

        try:
            run(0, 3000)
            meter.reset()
            gc.collect()
            run(3000, n)
            inside, outside = meter.leak()
            found = {k: (v - inside * meter.calls[k]) / n * 1e6 for k, v in meter.spent.items()}
            # Listeners run inside decide; the timers' outside cost is off the largest part.
            found["engine"] -= found["listeners"]
            found["engine"] -= outside * sum(meter.calls.values()) / n * 1e6
            return found
        finally:
            shield.close()

    with tempfile.TemporaryDirectory(prefix="hostcost-") as tmp:
        total = asyncio.run(whole(str(Path(tmp) / "whole")))
        found = parts(str(Path(tmp) / "parts"))
    found["total"] = total
    found["host"] = total - sum(v for k, v in found.items() if k != "total")
    return {k: round(v, 2) for k, v in found.items()}


# -- WSGI ----------------------------------------------------------------------------------


def _environ(i: int) -> dict[str, Any]:
    """What gunicorn hands the app for request ``i``, in gunicorn's key order."""
    ip, path = client(i)
    environ: dict[str, Any] = {
        "wsgi.errors": sys.stderr, "wsgi.version": (1, 0), "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.input_terminated": True,
        "SERVER_SOFTWARE": "gunicorn", "wsgi.input": io.BytesIO(b""), "REQUEST_METHOD": "GET",
        "QUERY_STRING": "", "RAW_URI": path, "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1:8080", "HTTP_X_FORWARDED_FOR": ip}
    for name, value in CLIENT_HEADERS:
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    environ |= {"wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1", "REMOTE_PORT": "40000",
                "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8080", "PATH_INFO": path, "SCRIPT_NAME": ""}
    return environ


def wsgi(n: int = 20000) -> dict[str, float]:
    """µs per request through ScrapeshieldWSGI around bench/wsgi.py's Flask app."""
    from bench.wsgi import _app
    from scrapeshield.hosts.wsgi import ScrapeshieldWSGI

    meter = Meter()
    tmp = tempfile.TemporaryDirectory(prefix="hostcost-")
    shield = _shield(meter, tmp.name)
    flask = _app()

    def served(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        result = flask.wsgi_app(environ, start_response)
        try:
            return list(result)  # the application's whole answer, timed as its part
        finally:
            result.close()  # type: ignore[attr-defined]

    app = ScrapeshieldWSGI(meter.wrap("application", served), shield)

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        return None

    def run(start: int, count: int) -> float:
        environs = [_environ(i) for i in range(start, start + count)]
        begin = time.thread_time()
        for environ in environs:
            result = app(environ, start_response)
            for _ in result:
                pass
        return time.thread_time() - begin

    try:
        return _measured(run, meter, 3000, n)
    finally:
        shield.close()
        tmp.cleanup()


if __name__ == "__main__":
    import json

    os.environ.setdefault("PYTHONHASHSEED", "0")
    print(json.dumps({"edge": edge(), "wsgi": wsgi()}, indent=2))
