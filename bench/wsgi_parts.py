"""Where a real gunicorn worker's CPU goes, bare and shielded, by part (a diagnosis for bench/wsgi.py).

    python -m bench.wsgi_parts [seconds] [rounds]

bench/wsgi.py's setup (one sync worker pinned to core 0, wrk-clients.lua on core 1), with
each part of a request timed inside the worker in thread CPU time: gunicorn's handling of a
connection and of its request, gunicorn's writes, the Flask app, and in the shielded worker
the middleware, the context, the engine's decision, its listeners and the challenge page
(hostcost.Meter's parts, so the same names as the in-process figures). The worker's other
threads (the event writer, jobs) are apart. Garbage collections are timed too (``gc``, with
their count), and the main thread's context switches counted: voluntary ones include waiting
for the GIL while the event writer or the jobs thread holds it. Parts nest: ``gunicorn_connection`` holds
``gunicorn_request``, which holds the app (``middleware`` or ``application``) and
``gunicorn_write``; ``middleware`` holds ``context``, ``engine`` (which holds ``listeners``),
``challenge_page`` and ``application``. Each timer reads the thread's CPU clock, a system
call of about a microsecond, so the totals run higher than bench/wsgi.py's: compare parts.

Why: in-process (bench/hostcost.py) the shield's parts run with warm caches; in the worker,
between requests, the kernel's network path and other processes evict them, and the same
code takes two to three times as long. This shows how long each part takes where it counts.
"""

from __future__ import annotations

import gc
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from bench.hostcost import Meter, _shield
from bench.load import free_port, wrk
from bench.wsgi import _app, _start, _worker_cpu
from scrapeshield.hosts.heap import settle_heap

PARTS_PATH = "/.bench/parts"  # asked by this script only, never by wrk-clients.lua
VARIANTS = ("bare", "shielded")


# -- the apps gunicorn serves ("bench.wsgi_parts:bare()", "bench.wsgi_parts:shielded()") ---


class _Parts:
    """Answers PARTS_PATH with the CPU seconds and calls of each part since the last ask."""

    def __init__(self, app: WSGIApplication, meter: Meter) -> None:
        self.app = app
        self.meter = meter

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Any:
        if environ.get("PATH_INFO") != PARTS_PATH:
            return self.app(environ, start_response)
        body = json.dumps({"spent": self.meter.spent, "calls": self.meter.calls}).encode()
        self.meter.reset()
        start_response("200 OK", [("content-type", "application/json"), ("content-length", str(len(body)))])
        return [body]


def _timed_gunicorn(meter: Meter) -> None:
    """gunicorn's own parts, in this worker process only (it loads the app after forking)."""
    import gunicorn.http.wsgi  # type: ignore[import-untyped]
    import gunicorn.workers.sync  # type: ignore[import-untyped]

    worker, response = gunicorn.workers.sync.SyncWorker, gunicorn.http.wsgi.Response
    worker.handle = _method(meter, "gunicorn_connection", worker.handle)
    worker.handle_request = _method(meter, "gunicorn_request", worker.handle_request)
    response.write = _method(meter, "gunicorn_write", response.write)


def _timed_gc(meter: Meter) -> None:
    """Garbage collections (any generation, any thread) as a part of their own: ``gc``."""
    meter.spent.setdefault("gc", 0.0)
    meter.calls.setdefault("gc", 0)
    started: list[float] = [0.0]

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.thread_time()
        else:
            meter.spent["gc"] += time.thread_time() - started[0]
            meter.calls["gc"] += 1

    gc.callbacks.append(callback)


def _switches(master: int) -> tuple[int, int]:
    """The worker's main thread's (voluntary, involuntary) context switches so far: it gives up
    the CPU when it waits (a socket, the GIL) and is preempted (by another thread or process)."""
    try:
        child = Path(f"/proc/{master}/task/{master}/children").read_text().split()[0]
        status = Path(f"/proc/{child}/task/{child}/status").read_text()
        found = dict(re.findall(r"^(\w+_ctxt_switches):\s+(\d+)$", status, re.M))
        return int(found["voluntary_ctxt_switches"]), int(found["nonvoluntary_ctxt_switches"])
    except (OSError, IndexError, KeyError, ValueError):
        return 0, 0


def _method(meter: Meter, part: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    timed = meter.wrap(part, fn)

    def method(self: Any, *args: Any) -> Any:  # a plain function: binds as a method
        return timed(self, *args)

    return method


def bare() -> Any:
    meter = Meter()
    _timed_gunicorn(meter)
    _timed_gc(meter)
    app = _app()
    app.wsgi_app = _Parts(meter.wrap("application", app.wsgi_app), meter)  # type: ignore[method-assign]
    settle_heap()
    return app


def shielded() -> Any:
    from scrapeshield.hosts.wsgi import ScrapeshieldWSGI

    meter = Meter()
    _timed_gunicorn(meter)
    _timed_gc(meter)
    shield = _shield(meter, os.environ["BENCH_DATA_DIR"])  # context, engine, listeners, page
    app = _app()
    middleware = ScrapeshieldWSGI(meter.wrap("application", app.wsgi_app), shield)
    app.wsgi_app = _Parts(meter.wrap("middleware", middleware), meter)  # type: ignore[method-assign]
    settle_heap()
    return app


# -- the measurement -------------------------------------------------------------------------


def _asked(port: int) -> dict[str, dict[str, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{PARTS_PATH}", timeout=10) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def run(seconds: int = 5, rounds: int = 3, connections: int = 8) -> dict[str, Any]:
    """Both workers live at once; wrk alternates between them; medians over the rounds."""
    per_round: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        procs, ports = {}, {}
        try:
            for variant in VARIANTS:
                ports[variant] = free_port()
                data = Path(tmp) / variant
                data.mkdir()
                procs[variant] = _start(variant, ports[variant], str(data), f"bench.wsgi_parts:{variant}()")
            for variant in VARIANTS:
                wrk(ports[variant], 2, connections)  # warm-up
            for _ in range(rounds):
                for variant in VARIANTS:
                    _asked(ports[variant])  # from now on
                    main0, other0 = _worker_cpu(procs[variant].pid)
                    switches0 = _switches(procs[variant].pid)
                    measured = wrk(ports[variant], seconds, connections)
                    switches1 = _switches(procs[variant].pid)
                    main1, other1 = _worker_cpu(procs[variant].pid)
                    parts = _asked(ports[variant])
                    per = 1e6 / measured["requests"]
                    row = {"worker_main_thread": (main1 - main0) * per,
                           "worker_other_threads": (other1 - other0) * per}
                    row |= {part: spent * per for part, spent in parts["spent"].items()}
                    row["gc_collections_per_1000_requests"] = parts["calls"]["gc"] * per / 1000
                    row["main_thread_voluntary_switches_per_request"] = (
                        switches1[0] - switches0[0]) * per / 1e6
                    row["main_thread_involuntary_switches_per_request"] = (
                        switches1[1] - switches0[1]) * per / 1e6
                    for part in ("application", "challenge_page"):
                        if part in parts["calls"]:
                            row[f"{part}_per_call"] = (
                                parts["spent"][part] / max(parts["calls"][part], 1) * 1e6)
                    per_round[variant].append(row)
        finally:
            for proc in procs.values():
                proc.terminate()
            for proc in procs.values():
                proc.wait(timeout=20)
    return {variant: {part: round(statistics.median(r[part] for r in rows), 2) for part in rows[0]}
            for variant, rows in per_round.items()} | {"unit": "CPU us per request (per call where named)"}


if __name__ == "__main__":
    print(json.dumps(run(*(int(a) for a in sys.argv[1:3])), indent=2))
