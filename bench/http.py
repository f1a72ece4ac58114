"""Requests per second and latency through uvicorn: bare app, with scrapeshield, with slowapi.

uvicorn (httptools + uvloop, one worker) is pinned to one core and wrk to the
other, so "per core" is what the ratios compare. Variants are interleaved over
rounds and the median kept, because this machine is shared and noisy.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
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
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{variant} did not start")


def _wrk(port: int, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        [
            "taskset",
            "-c",
            "1",
            "wrk",
            "-t1",
            "-c32",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(ROOT / "bench" / "wrk-clients.lua"),
            f"http://127.0.0.1:{port}/",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)

    def pct(label: str) -> float:
        m = re.search(rf"{label}%\s+([\d.]+)(us|ms|s)", out)
        assert m, out
        scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
        return float(m.group(1)) * scale

    return {
        "rps": rps,
        "p50_ms": pct("50"),
        "p99_ms": pct("99"),
        "non_2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


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
                    _wrk(port, 2)  # warm-up
                    results[variant].append(_wrk(port, seconds))
                finally:
                    proc.terminate()
                    proc.wait(timeout=20)
    summary: dict[str, Any] = {}
    for variant, runs in results.items():
        summary[variant] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
    bare = summary["bare"]["rps"]
    summary["ratio_shielded_to_bare"] = round(summary["shielded"]["rps"] / bare, 3)
    summary["ratio_slowapi_to_bare"] = round(summary["with_slowapi"]["rps"] / bare, 3)
    summary["added_p50_ms_shielded"] = round(summary["shielded"]["p50_ms"] - summary["bare"]["p50_ms"], 3)
    return summary
