"""Requests per second and latency of a hello-world Flask app under gunicorn, bare and shielded.

gunicorn (one sync worker, one thread) is pinned to one core and wrk to the other,
so the ratio compares what one core serves. The shielded app runs ScrapeshieldWSGI
under bench-policy.yaml, which trusts loopback's X-Forwarded-For, and wrk-clients.lua
spreads the requests over 100,000 clients with a browser's headers. Variants are
interleaved over rounds and the median kept, because this machine is shared and noisy.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from flask import Flask

from bench import hostcost
from bench.load import ROOT, free_port, wait_answering, wrk
from scrapeshield.hosts.heap import settle_heap

POLICY = Path(__file__).with_name("bench-policy.yaml")
VARIANTS = ("bare", "shielded")


# -- the apps gunicorn serves ("bench.wsgi:bare()", "bench.wsgi:shielded()") ---------------


def bare() -> Flask:
    app = _app()
    settle_heap()  # as a serving process should (hosts/heap.py); the same step in both variants
    return app


def _app() -> Flask:
    app = Flask("bench")

    @app.get("/")
    def hello() -> str:
        return "hello, world"

    @app.get("/u/<name>")
    def profile(name: str) -> str:
        return "hello, world"

    return app


def shielded() -> Flask:
    from scrapeshield.hosts.wsgi import ScrapeshieldWSGI
    from scrapeshield.runtime import Shield
    from scrapeshield.settings import Settings

    shield = Shield(Settings.resolve(data_dir=os.environ["BENCH_DATA_DIR"], policy_path=str(POLICY)))
    shield.start()
    app = _app()
    app.wsgi_app = ScrapeshieldWSGI(app.wsgi_app, shield)  # type: ignore[method-assign]
    settle_heap()
    return app


# -- the measurement -------------------------------------------------------------------------


def _start(variant: str, port: int, data_dir: str, app: str = "") -> subprocess.Popen[bytes]:
    """gunicorn serving ``app`` (default: this module's ``variant``) as the bench runs it."""
    import gunicorn.config  # type: ignore[import-untyped]

    private = ["--no-control-socket"] if any(
        s.name == "control_socket_disable" for s in gunicorn.config.KNOWN_SETTINGS) else []
    cmd = [
        "taskset", "-c", "0", sys.executable, "-m", "gunicorn",
        "-w", "1", "--threads", "1", "-k", "sync", "-b", f"127.0.0.1:{port}",
        "--log-level", "warning", *private, app or f"bench.wsgi:{variant}()",
    ]
    env = {**os.environ, "BENCH_DATA_DIR": data_dir, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    wait_answering(proc, port, variant)
    return proc


def _worker_cpu(master: int) -> tuple[float, float]:
    """CPU seconds the master's children (the worker) have used, as (the thread serving the
    requests, every other thread: the shield's event writer and jobs). Noise from other
    processes on a shared machine slows a worker down but does not add to its CPU time."""
    try:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        main = other = 0
        for child in children:
            for task in Path(f"/proc/{child}/task").iterdir():
                fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
                ticks = int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
                if task.name == child:
                    main += ticks
                else:
                    other += ticks
    except (OSError, IndexError, ValueError):
        return float("nan"), float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    return main / tick, other / tick


def run(seconds: int = 8, rounds: int = 3, connections: int = 8) -> dict[str, Any]:
    """Medians over interleaved rounds; a sync worker serves one connection at a time and
    closes it, so latency is mostly queueing: p50 ≈ connections / throughput."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make system-deps)")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for variant in VARIANTS:
                port = free_port()
                proc = _start(variant, port, tmp)
                try:
                    wrk(port, 2, connections)  # warm-up
                    main0, other0 = _worker_cpu(proc.pid)
                    measured = wrk(port, seconds, connections)
                    main1, other1 = _worker_cpu(proc.pid)
                    per = 1e6 / measured.pop("requests")
                    measured["cpu_us_per_request"] = round((main1 - main0 + other1 - other0) * per, 1)
                    # of which the shield's background threads (none in the bare variant)
                    measured["background_cpu_us_per_request"] = round((other1 - other0) * per, 1)
                    # The share of the run the worker was on a CPU: well under 1, its rps were
                    # bound by waiting (gunicorn's graceful close waits for wrk, slow to run on
                    # a loaded core), not by its CPU, and their ratio says little; the CPU ratio
                    # still does.
                    measured["worker_busy"] = round((main1 - main0 + other1 - other0) / seconds, 2)
                    results[variant].append(measured)
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
    summary: dict[str, Any] = {}
    for variant, runs in results.items():
        summary[variant] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    summary["ratio_shielded_to_bare"] = round(summary["shielded"]["rps"] / summary["bare"]["rps"], 3)
    summary["cpu_ratio_bare_to_shielded"] = round(
        summary["bare"]["cpu_us_per_request"] / summary["shielded"]["cpu_us_per_request"], 3)
    summary["added_p50_ms_shielded"] = round(summary["shielded"]["p50_ms"] - summary["bare"]["p50_ms"], 3)
    summary["rounds"] = {v: [r["rps"] for r in runs] for v, runs in results.items()}
    # The same traffic in-process, by part: the middleware itself against the context,
    # engine, listeners, challenge page and Flask app it calls (bench/hostcost.py).
    summary["in_process_us_per_request"] = hostcost.wsgi()
    return summary


if __name__ == "__main__":
    import json

    print(json.dumps(run(*(int(a) for a in sys.argv[1:3])), indent=2))
