"""What the background jobs and the decision listeners cost per request, load-independently.

    python -m bench.jobcost [COUNT] [RATE]

COUNT requests of the HTTP bench mix (bench/http_parts.py's scopes) go in-process through
``engine.contexts.from_asgi`` and ``engine.decide`` with a ManualClock advancing 0.5 ms a
request, as bench/instructions.py runs them (no threads started). Then:

- listeners: the same requests again on a fresh shield, decided once with the listeners and
  once without (thread CPU time, the best of ``REPEATS``), their difference per request; and
  each listener alone, called with the pairs of the run (as bench/http_parts.py does);
- event writer: ``recorder.flush()`` of the queued events (apart: not a job);
- jobs: each job run as the runner runs it (steps included) after the clock moved past the
  ledger's window, then twice more (the second run still sees what other jobs' first runs
  wrote, e.g. campaigns for the ledger; the third has nothing new: the fixed part). Per request
  at RATE requests a second: (first + second - 2 * third) / COUNT + third / (period * RATE).
  The ledger's work is per client and window, not per request: in this mix each client makes
  one request in the run, so its figure is an upper bound (at 10k rps over 100k clients a
  300 s window has 30 requests per client).

Figures in microseconds of thread CPU time; run with the compiled build for compiled figures.
"""

from __future__ import annotations

import gc
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from typing import Any

from bench import apps, http_parts
from scrapeshield.clock import ManualClock
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

STEP = 0.0005  # simulated seconds between requests
REPEATS = 3


def _cpu(work: Callable[[], object]) -> float:
    start = time.thread_time()
    work()
    return time.thread_time() - start


def _run_job(run: Callable[[], object]) -> None:
    result = run()
    if isinstance(result, Iterator):
        for _ in result:
            pass


def _decide_all(shield: Shield, clock: ManualClock, scopes: list[dict[str, Any]]) -> list[Any]:
    build, decide = shield.engine.contexts.from_asgi, shield.engine.decide
    pairs = []
    for scope in scopes:
        clock.advance(STEP)
        ctx = build(scope, clock.now())
        pairs.append((ctx, decide(ctx)))
    return pairs


def _timed_decisions(shield: Shield, clock: ManualClock,
                     scopes: list[dict[str, Any]]) -> tuple[float, list[Any]]:
    start = time.thread_time()
    pairs = _decide_all(shield, clock, scopes)
    return time.thread_time() - start, pairs


def _timed_feed(listener: Any, pairs: list[Any]) -> float:
    start = time.thread_time()
    for ctx, decision in pairs:
        listener(ctx, decision)
    return time.thread_time() - start


def listeners(scopes: list[dict[str, Any]], tmp: str) -> dict[str, float]:
    """Per request: all listeners inside decide (with minus without), and each one alone."""
    best: dict[str, float] = {}
    for _ in range(REPEATS):
        for on in (True, False):
            clock = ManualClock()
            with tempfile.TemporaryDirectory(dir=tmp) as data:
                shield = Shield(Settings.resolve(data_dir=data, policy_path=str(apps.POLICY)), clock)
                kept = list(shield.engine.listeners)
                if not on:
                    shield.engine.listeners = []
                gc.collect()
                spent, pairs = _timed_decisions(shield, clock, scopes)
                key = "decide_with_listeners" if on else "decide_without"
                best[key] = min(best.get(key, spent), spent)
                if not on:  # each listener alone (fresh, unused), fed the pairs of this run
                    for listener in kept:
                        name = f"alone_{type(listener).__name__}"
                        spent = _timed_feed(listener, pairs)
                        best[name] = min(best.get(name, spent), spent)
                shield.close()
    n = len(scopes)
    out = {"listeners_in_decide": (best["decide_with_listeners"] - best["decide_without"]) / n * 1e6}
    out.update({k: v / n * 1e6 for k, v in best.items() if k.startswith("alone_")})
    out["listeners_alone_sum"] = sum(v for k, v in out.items() if k.startswith("alone_"))
    return {k: round(v, 2) for k, v in out.items()}


def jobs(scopes: list[dict[str, Any]], tmp: str, rate: float) -> dict[str, Any]:
    clock = ManualClock()
    shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(apps.POLICY)), clock)
    gc.collect()
    _decide_all(shield, clock, scopes)
    n = len(scopes)
    queued = len(shield.recorder._queue)
    writer = _cpu(shield.recorder.flush)
    clock.advance(600.0)  # the ledger's windows closed, as at its next turn
    first = {job.name: _cpu(lambda j=job: _run_job(j.run)) for job in shield.jobs.jobs}  # type: ignore[misc]
    runs = [first]
    for _ in range(2):  # the second run still has what other jobs' first runs made (campaigns
        clock.advance(60.0)  # for the ledger); the third has nothing new: the fixed part
        runs.append({job.name: _cpu(lambda j=job: _run_job(j.run)) for job in shield.jobs.jobs})  # type: ignore[misc]
    second = runs[2]
    out: dict[str, Any] = {"events_per_request": round(queued / n, 3),
                           "event_writer_per_request": round(writer / n * 1e6, 2)}
    total = 0.0
    for job in shield.jobs.jobs:
        fixed = second[job.name]
        per = max(first[job.name] + runs[1][job.name] - 2 * fixed, 0.0) / n + fixed / (job.every * rate)
        total += per
        out[f"job_{job.name}"] = {"first_ms": round(first[job.name] * 1e3, 2),
                                  "second_ms": round(runs[1][job.name] * 1e3, 2),
                                  "fixed_ms": round(fixed * 1e3, 2), "period_s": job.every,
                                  "us_per_request": round(per * 1e6, 3)}
    out["jobs_us_per_request"] = round(total * 1e6, 2)
    shield.close()
    return out


def main(count: int, rate: float, what: str) -> dict[str, Any]:
    scopes = [http_parts.scope(i) for i in range(1, count + 1)]
    gc.collect()
    gc.freeze()  # the load generator's requests, not the shield's heap
    out: dict[str, Any] = {"requests": count, "rate": rate}
    with tempfile.TemporaryDirectory() as tmp:
        if what in ("all", "jobs"):
            out.update(jobs(scopes, tmp, rate))
        if what in ("all", "listeners"):
            out.update(listeners(scopes, tmp))
    gc.unfreeze()
    return out


if __name__ == "__main__":
    import json

    args = sys.argv[1:]
    print(json.dumps(main(int(args[0]) if args else 60_000, float(args[1]) if len(args) > 1 else 10_000.0,
                          args[2] if len(args) > 2 else "all"), indent=1))
