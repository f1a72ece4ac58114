"""Requests per second and latency through nginx: alone in front of a Python app, versus with
auth_request asking `scrapeshield serve-decisions` about every request.

Both nginx servers use deploy/nginx/scrapeshield.conf with only the addresses (and the path of
the challenge page file the service writes, `--challenge-page`) changed; for "alone" its
`auth_request` line is switched off. As shipped, nginx fills in a challenge's page itself, so
each client request costs the service one request. Core pinning (this machine has two cores):

  core 0: the upstream (hello-world Starlette, uvicorn + httptools + uvloop, one worker)
          and the decision service (one process: its own httptools server on uvloop)
  core 1: wrk (one thread, 32 connections) and nginx (one worker)

So the decision service gets no core of its own: every decision is paid for out of the core
that serves the application, and the ratio is what the shield costs at equal hardware. wrk
straight at the upstream (upstream_direct) is measured as well, to show what bounds nginx-alone.
wrk-clients.lua spreads requests over 100,000 clients with X-Forwarded-For; nginx appends its
own peer and the decision service trusts 127.0.0.1 (bench-policy.yaml), so it resolves each
simulated client. Variants alternate within every round; the medians are reported.

Besides the shipped TCP upstream line, nginx asks the service over a Unix socket
(``serve-decisions --unix``, the config's commented ``server unix:`` line), and asks a stub
that answers every request with an empty 200 (bench/edge_stub.py) over both: the floor any
decision service pays per request for the round trip with nginx. The stub variants let every
request through to the upstream, so their requests per second are not the service's; their
CPU per request is the figure to read (``decisions_over_stub*_cpu_us``: scrapeshield's own).
Idle services cost core 0 nothing measurable while another variant runs (1-2 ms a second).
Each variant also reports the CPU per request of the upstream and of the service nginx asks
(``decisions_cpu_us_per_request``: the decision service, or the stub; from /proc): steadier
than requests per second on a shared machine, and it shows where core 0's time goes.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench import hostcost
from bench.http import _start
from bench.load import ROOT, free_port, process_cpu, wait_listening, wrk

CONF = ROOT / "deploy" / "nginx" / "scrapeshield.conf"
POLICY = ROOT / "bench" / "bench-policy.yaml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
# variant -> (the service nginx asks: None, "decisions" or "stub"; over a Unix socket?)
ASKS: dict[str, tuple[str | None, bool]] = {
    "nginx_alone": (None, False),
    "nginx_with_decisions": ("decisions", False),
    "nginx_with_decisions_unix": ("decisions", True),
    # The floor: a service that decides nothing (bench/edge_stub.py), same config and socket.
    "nginx_with_stub": ("stub", False),
    "nginx_with_stub_unix": ("stub", True),
}
VARIANTS = tuple(ASKS)
# For reading the baseline: wrk straight at the upstream, no nginx (same pinning).
ALL = (*VARIANTS, "upstream_direct")


PAGE = "/var/lib/scrapeshield/challenge.html"  # the shipped config's; swapped for the run's
TCP_SERVER = "server 127.0.0.1:8002;"
UNIX_SERVER = "# server unix:/run/scrapeshield/decisions.sock;"


def _site(listen: int, decisions: int | str, app: int, ask: bool, page: str) -> str:
    """The shipped config with the run's addresses: ``decisions`` a port or a socket path (then
    the config's commented Unix-socket server line is used instead of the TCP one)."""
    text = CONF.read_text()
    if isinstance(decisions, str):
        servers = [(TCP_SERVER, "# " + TCP_SERVER), (UNIX_SERVER, f"server unix:{decisions};")]
    else:
        servers = [(TCP_SERVER, f"server 127.0.0.1:{decisions};")]
    swaps = [("listen 80;", f"listen 127.0.0.1:{listen};"), *servers,
             ("server 127.0.0.1:9000;", f"server 127.0.0.1:{app};"),
             (f"alias {PAGE};", f"alias {page};")]
    if not ask:
        swaps.append(("auth_request /.scrapeshield/auth;", "auth_request off;"))
    for old, new in swaps:
        if text.count(old) != 1:
            raise RuntimeError(f"{CONF} no longer has exactly one {old!r}")
        text = text.replace(old, new)
    return text


def _nginx(workdir: Path, site: str, port: int) -> subprocess.Popen[bytes]:
    workdir.mkdir(parents=True)
    (workdir / "site.conf").write_text(site)
    kinds = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    temp = " ".join(f"{k}_temp_path {workdir / k};" for k in kinds)
    user = "user root root;\n" if os.geteuid() == 0 else ""
    (workdir / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} warn;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n  access_log off;\n  {temp}\n  include {workdir / 'site.conf'};\n}}\n")
    cmd = ["taskset", "-c", "1", NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"),
           "-e", str(workdir / "error.log")]
    proc = subprocess.Popen(cmd)
    wait_listening(proc, port, "nginx")
    return proc


def _decisions(where: int | str, admin_port: int, data_dir: str, core: int) -> subprocess.Popen[bytes]:
    listen = ["--unix", where] if isinstance(where, str) else ["--port", str(where)]
    Path(data_dir).mkdir(exist_ok=True)
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "scrapeshield", "serve-decisions",
           *listen, "--admin-port", str(admin_port), "--policy", str(POLICY),
           "--data-dir", data_dir, "--challenge-page", str(Path(data_dir) / "challenge.html")]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    _wait(proc, where, "serve-decisions")
    return proc


def _stub(where: int | str, core: int) -> subprocess.Popen[bytes]:
    listen = ["--unix", where] if isinstance(where, str) else ["--port", str(where)]
    cmd = ["taskset", "-c", str(core), sys.executable, "-m", "bench.edge_stub", *listen]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    _wait(proc, where, "edge stub")
    return proc


def _wait(proc: subprocess.Popen[bytes], where: int | str, what: str) -> None:
    if isinstance(where, int):
        wait_listening(proc, where, what)
        return
    for _ in range(600):  # a minute at most
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        with socket.socket(socket.AF_UNIX) as sock:
            try:
                sock.connect(where)
                return
            except OSError:
                time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"{what} did not start")


def _decisions_taken(admin_port: int) -> float:
    text = httpx.get(f"http://127.0.0.1:{admin_port}/metrics", timeout=10).text
    found = re.findall(r'^scrapeshield_decisions_total\{action="\w+"\} (\S+)$', text, re.M)
    return sum(float(v) for v in found)


def run(seconds: int = 8, rounds: int = 3, decisions_core: int = 0) -> dict[str, Any]:
    """``decisions_core=1`` puts the decision service with wrk and nginx instead (it then
    competes with the load generator rather than with the application)."""
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            raise RuntimeError(f"{tool} is not installed (make system-deps)")
    if not os.access(NGINX, os.X_OK):
        raise RuntimeError("nginx is not installed (make system-deps)")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in ALL}
    procs: list[subprocess.Popen[bytes]] = []
    decided: dict[str, list[float]] = {v: [] for v, (asks, _) in ASKS.items() if asks == "decisions"}
    with tempfile.TemporaryDirectory() as tmp:
        app_port = free_port()
        ports = {v: free_port() for v in VARIANTS} | {"upstream_direct": app_port}
        services: dict[tuple[str, bool], tuple[subprocess.Popen[bytes], int | str, int]] = {}
        try:
            upstream = _start("bare", app_port, tmp)  # core 0
            procs.append(upstream)
            for kind, unix in sorted({a for a in ASKS.values() if a[0] is not None}):
                where: int | str = f"{tmp}/{kind}.sock" if unix else free_port()
                admin_port = free_port()
                proc = (_decisions(where, admin_port, f"{tmp}/{kind}-{unix}", decisions_core)
                        if kind == "decisions" else _stub(where, decisions_core))
                procs.append(proc)
                services[(kind, unix)] = (proc, where, admin_port)
            for variant, (kind, unix) in ASKS.items():
                where = services[(kind, unix)][1] if kind is not None else free_port()
                site = _site(ports[variant], where, app_port, ask=kind is not None,
                             page=f"{tmp}/decisions-False/challenge.html")
                procs.append(_nginx(Path(tmp) / variant, site, ports[variant]))  # core 1
            for variant in ALL:
                wrk(ports[variant], 2)  # warm-up
            for i in range(rounds):
                order = ALL if i % 2 == 0 else ALL[::-1]
                for variant in order:
                    kind, unix = ASKS.get(variant, (None, False))
                    service = services.get((kind, unix)) if kind is not None else None
                    asked = service[0] if service is not None else None
                    before = _decisions_taken(service[2]) if kind == "decisions" and service else 0.0
                    cpu = [process_cpu(p.pid) if p else 0.0 for p in (upstream, asked)]
                    result = wrk(ports[variant], seconds)
                    # Where core 0's time goes, per request served: the upstream, the service
                    # nginx asks (the decision service or the stub).
                    for name, proc, start in zip(("upstream", "decisions"), (upstream, asked), cpu,
                                                 strict=True):
                        used = process_cpu(proc.pid) - start if proc is not None else 0.0
                        result[f"{name}_cpu_us_per_request"] = round(used / result["requests"] * 1e6, 1)
                    results[variant].append(result)
                    if kind == "decisions" and service is not None:
                        decided[variant].append(
                            (_decisions_taken(service[2]) - before) / result["requests"])
        finally:
            for proc in reversed(procs):
                proc.terminate()
            for proc in procs:
                try:
                    proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    proc.kill()
    summary: dict[str, Any] = {}
    for variant, runs in results.items():
        summary[variant] = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
        summary[variant]["rps_rounds"] = [r["rps"] for r in runs]
    alone = summary["nginx_alone"]
    for variant in VARIANTS[1:]:
        summary[f"ratio_{variant.removeprefix('nginx_')}_to_alone"] = round(
            summary[variant]["rps"] / alone["rps"], 3)
    asked = summary["nginx_with_decisions"]
    summary["added_p50_ms"] = round(asked["p50_ms"] - alone["p50_ms"], 3)
    summary["added_p99_ms"] = round(asked["p99_ms"] - alone["p99_ms"], 3)
    # What scrapeshield adds per request over a server that decides nothing, on the same socket.
    for unix in (False, True):
        suffix = "_unix" if unix else ""
        summary[f"decisions_over_stub{suffix}_cpu_us"] = round(
            summary[f"nginx_with_decisions{suffix}"]["decisions_cpu_us_per_request"]
            - summary[f"nginx_with_stub{suffix}"]["decisions_cpu_us_per_request"], 1)
    # About 1.0 when every request through nginx was decided on once (a sanity check).
    summary["decisions_per_request"] = {v: round(statistics.median(d), 3) for v, d in decided.items()}
    # Below 1: nginx-alone is held back by core 1 (wrk + nginx), not by the Python upstream.
    summary["ratio_alone_to_upstream_direct"] = round(alone["rps"] / summary["upstream_direct"]["rps"], 3)
    summary["target_ratio"] = 0.5
    # The same traffic in-process, by part: the host form (server + service) against the
    # context, engine, listeners and challenge page it calls (bench/hostcost.py).
    summary["in_process_us_per_request"] = hostcost.edge()
    summary["pinning"] = (
        "core 0: upstream + decision service; core 1: wrk + nginx (1 worker)" if decisions_core == 0
        else "core 0: upstream; core 1: wrk + nginx (1 worker) + decision service")
    return summary
