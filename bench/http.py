"""Requests per second and latency through uvicorn: bare app, with scrapeshield, with slowapi.

uvicorn (httptools + uvloop, one worker) is pinned to one core and wrk to the
other, so "per core" is what the ratios compare. Variants are interleaved over
rounds and the median kept, because this machine is shared and noisy.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from typing import Any

from bench import http_parts
from bench.load import ROOT, process_cpu, wait_listening, wrk

VARIANTS = ("bare", "shielded", "with_slowapi")


def _start(variant: str, port: int, data_dir: str) -> subprocess.Popen[bytes]:
    cmd = [
        "taskset",
        "-c",
        "0",
        sys.executable,
        "-m",
        "uvicorn",
        f"bench.apps:{variant}",
        "--factory",
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--loop",
        "uvloop",
        "--http",
        "httptools",
        "--no-access-log",
        "--log-level",
        "warning",
        "--no-proxy-headers",
    ]
    env = {**os.environ, "BENCH_DATA_DIR": data_dir, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env)
    wait_listening(proc, port, variant, seconds=30)
    return proc


def run(seconds: int = 8, rounds: int = 3) -> dict[str, Any]:
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make system-deps)")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in VARIANTS}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):
            for variant in VARIANTS:
                port = 18000 + len(results[variant]) * 10 + VARIANTS.index(variant)
                proc = _start(variant, port, tmp)
                try:
                    wrk(port, 2)  # warm-up
                    before = process_cpu(proc.pid)
                    measured = wrk(port, seconds)
                    # CPU per request of the server (all its threads): steadier than requests
                    # per second when other processes share the machine.
                    used = process_cpu(proc.pid) - before
                    measured["cpu_us_per_request"] = round(used / measured["requests"] * 1e6, 1)
                    results[variant].append(measured)
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
    summary: dict[str, Any] = {}
    for variant, runs in results.items():
        summary[variant] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    bare = summary["bare"]["rps"]
    summary["ratio_shielded_to_bare"] = round(summary["shielded"]["rps"] / bare, 3)
    summary["ratio_slowapi_to_bare"] = round(summary["with_slowapi"]["rps"] / bare, 3)
    summary["cpu_ratio_bare_to_shielded"] = round(
        summary["bare"]["cpu_us_per_request"] / summary["shielded"]["cpu_us_per_request"], 3)
    summary["added_p50_ms_shielded"] = round(summary["shielded"]["p50_ms"] - summary["bare"]["p50_ms"], 3)
    # Where the shielded CPU goes: the same request mix in-process, part by part (http_parts).
    summary["breakdown"] = http_parts.run()
    return summary
