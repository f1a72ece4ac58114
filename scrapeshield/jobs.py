"""Periodic background work of a serving shield, on one thread.

Campaign grouping, ledger sealing, alert evaluation and the like each register a job;
a job that raises is logged and tried again at its next turn, never stopping the others.
Jobs must be idempotent: on many nodes each node runs them against the shared database.

The runner shares the GIL with the request path, which waits for it up to the 5 ms switch
interval whenever a job runs Python code. So the runner yields between jobs, and a job with
much to do can return an iterator and do its work one bounded piece per step: the runner
yields between steps (and stops stepping at shutdown).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass

from scrapeshield.clock import monotonic

log = logging.getLogger("scrapeshield.jobs")


@dataclass(slots=True)
class Job:
    name: str
    every: float  # seconds between runs
    run: Callable[[], object]
    due: float = 0.0  # monotonic time of the next run
    failures: int = 0


class Jobs:
    def __init__(self) -> None:
        self.jobs: list[Job] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, every: float, run: Callable[[], object], first: float | None = None) -> None:
        """Run ``run`` every ``every`` seconds, the first time ``first`` seconds after now
        (default: ``every``)."""
        if every <= 0:
            raise ValueError("a job's period must be positive")
        self.jobs.append(Job(name, every, run, due=monotonic() + (every if first is None else first)))

    def run_due(self) -> None:
        """Run every job whose time has come (the thread's loop; tests call it directly)."""
        for job in self.jobs:
            if monotonic() < job.due:
                continue
            try:
                result = job.run()
                if isinstance(result, Iterator):
                    self._step(result)
                job.failures = 0
            except Exception:
                job.failures += 1
                log.exception("background job %s failed (%d in a row)", job.name, job.failures)
            job.due = monotonic() + job.every
            yield_gil()

    def _step(self, steps: Iterator[object]) -> None:
        for _ in steps:
            if self._stop.is_set():
                if isinstance(steps, Generator):
                    steps.close()
                return
            yield_gil()

    def start(self) -> None:
        if self._thread is None and self.jobs:
            self._thread = threading.Thread(target=self._loop, name="scrapeshield-jobs", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.run_due()
            wait = min((job.due for job in self.jobs), default=monotonic() + 1.0) - monotonic()
            self._stop.wait(min(max(wait, 0.05), 1.0))


def yield_gil() -> None:
    """Let a thread waiting for the GIL (the request path) run now rather than after the
    switch interval: sleep(0) releases the GIL and takes it back (it reads no time)."""
    time.sleep(0)
