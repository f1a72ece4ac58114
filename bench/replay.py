"""Log replay speed: lines per second on one core, next to GoAccess and fail2ban-regex.

One generated combined log of ≥ 5 million lines (cached under .bench/) is read by:
- the batch path (polars parsing + column-wise scoring), pinned to one core with one
  polars thread, in a child process — parse and score timed, then the findings
  (clients, campaigns, records taken) timed apart;
- the line-at-a-time path (the real Engine per line) on a 200k-line slice;
- GoAccess (`goaccess FILE --log-format=COMBINED -o report.json`) on the whole log;
- fail2ban-regex with one regex on a 100k-line slice (at its speed the whole log would
  take about fifteen minutes).
Each external tool is pinned to one core too and bounded by a timeout. The machine is shared,
so every rate is given twice: per wall-clock second, and per CPU second of the process
(user + system, children included for the external tools); the ratios use CPU seconds.

    python -m bench.replay            # or: python -m bench.run replay
    python -m bench.replay --stages   # CPU seconds of read+parse, scoring and findings apart
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

LINES = 5_000_000
LIVE_SLICE = 200_000
F2B_SLICE = 100_000
CACHE = Path(".bench")
F2B_REGEX = r'^<HOST> .*"GET /api/v1/users/\d+'
TIMEOUT = 900


def log_file(lines: int = LINES) -> Path:
    """The generated log, made once: a day of people and scrapers of every persona."""
    from scrapeshield.forensics.generate import generate

    CACHE.mkdir(exist_ok=True)
    path = CACHE / f"replay-{lines}.log"
    meta = path.with_suffix(".json")
    if path.exists() and meta.exists() and json.loads(meta.read_text()).get("lines") == lines:
        return path
    truth = generate(path, people=lines // 44, hours=24, scrapers=40, seed=11, users=100_000, max_lines=lines)
    meta.write_text(
        json.dumps({"lines": truth.lines, "scrapers": len(truth.scrapers), "people": len(truth.people)})
    )
    return path


def head(path: Path, lines: int) -> Path:
    out = path.with_name(f"{path.stem}-head{lines}.log")
    if not out.exists():
        with path.open("rb") as src, out.open("wb") as dst:
            for _, line in zip(range(lines), src, strict=False):
                dst.write(line)
    return out


def _pinned(cmd: list[str], env: dict[str, str] | None = None) -> list[str]:
    return ["taskset", "-c", "0", *cmd] if shutil.which("taskset") else cmd


def batch(path: Path) -> dict[str, Any]:
    """The batch path in a child process on one core with one polars thread."""
    env = {**os.environ, "POLARS_MAX_THREADS": "1", "OMP_NUM_THREADS": "1"}
    cmd = _pinned([sys.executable, "-m", "bench.replay", "--worker", str(path)])
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=True)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def worker(path: str) -> None:
    import polars as pl

    from scrapeshield.events import Pseudonymiser
    from scrapeshield.forensics.findings import find
    from scrapeshield.forensics.replay import replay
    from scrapeshield.policy.loader import load_policy

    policy = load_policy()
    started, cpu = time.perf_counter(), time.process_time()
    run = replay([path], policy)
    scored, scored_cpu = time.perf_counter() - started, time.process_time() - cpu
    found = find(run.decided, policy, Pseudonymiser(b"bench"))
    total, total_cpu = time.perf_counter() - started, time.process_time() - cpu
    print(
        json.dumps(
            {
                "lines": run.lines,
                "bad_lines": run.bad_lines,
                "parse_and_score_wall_s": round(scored, 2),
                "parse_and_score_cpu_s": round(scored_cpu, 2),
                "lines_per_wall_s": round(run.lines / scored),
                "lines_per_cpu_s": round(run.lines / scored_cpu),
                "with_findings_wall_s": round(total, 2),
                "with_findings_cpu_s": round(total_cpu, 2),
                "lines_per_cpu_s_with_findings": round(run.lines / total_cpu),
                "contained": found.contained().height,
                "campaigns": len(found.campaigns),
                # CPU seconds are the process's, every thread included; with one polars thread
                # and the process pinned to one core they are one core's seconds.
                "polars_threads": pl.thread_pool_size(),
                "cores_allowed": len(os.sched_getaffinity(0)),
            }
        )
    )


def stages(path: str) -> None:
    """CPU seconds of each stage of the batch path (run it under taskset and POLARS_MAX_THREADS=1)."""
    from scrapeshield.events import Pseudonymiser
    from scrapeshield.forensics.batch import decide_lines
    from scrapeshield.forensics.findings import find
    from scrapeshield.forensics.policy import replay_policy
    from scrapeshield.forensics.reader import Problems
    from scrapeshield.forensics.replay import load
    from scrapeshield.policy.loader import load_policy

    policy = load_policy()
    cpu = time.process_time()
    lines, total = load([path], None, Problems())
    parsed = time.process_time()
    decided = decide_lines(lines, replay_policy(policy).compiled)
    scored = time.process_time()
    find(decided, policy, Pseudonymiser(b"bench"))
    found = time.process_time()
    print(json.dumps({"lines": total, "read_and_parse_cpu_s": round(parsed - cpu, 2),
                      "score_cpu_s": round(scored - parsed, 2), "findings_cpu_s": round(found - scored, 2),
                      "lines_per_cpu_s": round(total / (scored - cpu)),
                      "lines_per_cpu_s_with_findings": round(total / (found - cpu)),
                      "load_average_1m": round(os.getloadavg()[0], 2)}))


Rates = tuple[float, float]  # lines per wall second, per CPU second


def line_at_a_time(path: Path) -> Rates:
    from scrapeshield.forensics.replay import replay
    from scrapeshield.policy.loader import load_policy

    started, cpu = time.perf_counter(), time.process_time()
    run = replay([path], load_policy(), exact=True)
    return run.lines / (time.perf_counter() - started), run.lines / (time.process_time() - cpu)


def _child(cmd: list[str], lines: int) -> tuple[Rates, str]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(_pinned(cmd), capture_output=True, text=True, timeout=TIMEOUT, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return (lines / wall, lines / cpu), done.stdout


def goaccess(path: Path, lines: int) -> Rates | None:
    if not shutil.which("goaccess"):
        return None
    out = CACHE / "goaccess.json"
    rates, _ = _child(["goaccess", str(path), "--log-format=COMBINED", "-o", str(out)], lines)
    return rates


def fail2ban(path: Path, lines: int) -> Rates | None:
    if not shutil.which("fail2ban-regex"):
        return None
    rates, stdout = _child(["fail2ban-regex", str(path), F2B_REGEX], lines)
    return rates if re.search(r"Lines: \d+ lines", stdout) else None


def run() -> dict[str, Any]:
    path = log_file()
    load_before = os.getloadavg()
    lines = json.loads(path.with_suffix(".json").read_text())["lines"]
    fast = batch(path)
    exact = line_at_a_time(head(path, LIVE_SLICE))
    ga = goaccess(path, lines)
    f2b = fail2ban(head(path, F2B_SLICE), F2B_SLICE)
    rate = fast["lines_per_cpu_s"]

    def pair(rates: Rates | None) -> dict[str, int] | None:
        return None if rates is None else {"per_wall_s": round(rates[0]), "per_cpu_s": round(rates[1])}

    return {
        "log_lines": lines,
        "batch": fast,
        "lines_per_s": {
            "batch": {"per_wall_s": fast["lines_per_wall_s"], "per_cpu_s": rate},
            "line_at_a_time": pair(exact),
            "goaccess": pair(ga),
            "fail2ban_regex": pair(f2b),
        },
        "ratio_batch_to_line_at_a_time": round(rate / exact[1], 1),
        "ratio_batch_to_goaccess": round(rate / ga[1], 2) if ga else None,
        "ratio_batch_to_fail2ban_regex": round(rate / f2b[1], 1) if f2b else None,
        "target_lines_per_s": 300_000,
        # Other work on the machine inflates CPU seconds too (shared caches, a VM's stolen time):
        # the 1-minute load average before and after the run says how quiet it was.
        "load_average_1m": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
        "notes": f"one core each (taskset, POLARS_MAX_THREADS=1); line-at-a-time on the first "
        f"{LIVE_SLICE:,} lines, fail2ban-regex on the first {F2B_SLICE:,}; ratios per CPU second",
    }


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        worker(sys.argv[2])
    elif len(sys.argv) >= 2 and sys.argv[1] == "--stages":
        stages(sys.argv[2] if len(sys.argv) == 3 else str(log_file()))
    else:
        print(json.dumps(run(), indent=2))
