"""The background job runner: due jobs run, a failing job does not stop the others."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from scrapeshield.jobs import Jobs


def test_due_jobs_run_and_a_failing_job_does_not_stop_the_others() -> None:
    jobs = Jobs()
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("broken job")

    jobs.add("boom", 0.001, boom)
    jobs.add("ok", 0.001, lambda: ran.append("ok"))
    for job in jobs.jobs:
        job.due = 0.0
    jobs.run_due()
    assert ran == ["ok"]
    assert [j.failures for j in jobs.jobs] == [1, 0]


def test_jobs_not_due_wait_and_the_thread_runs_them() -> None:
    jobs = Jobs()
    done = threading.Event()
    jobs.add("later", 3600, done.set)
    jobs.run_due()
    assert not done.is_set()
    jobs.add("soon", 0.05, done.set)
    jobs.start()
    try:
        assert done.wait(5)
    finally:
        jobs.close()


def test_a_job_needs_a_positive_period() -> None:
    with pytest.raises(ValueError):
        Jobs().add("never", 0, lambda: None)


def test_a_job_done_in_steps_runs_every_step_and_stops_at_shutdown() -> None:
    """A job may return an iterator: the runner takes one step at a time (yielding the GIL
    between them) and stops stepping once the runner is closing."""
    jobs = Jobs()
    steps: list[int] = []

    def pieces() -> Iterator[None]:
        for i in range(5):
            steps.append(i)
            yield

    jobs.add("pieces", 0.001, pieces)
    jobs.jobs[0].due = 0.0
    jobs.run_due()
    assert steps == [0, 1, 2, 3, 4] and jobs.jobs[0].failures == 0

    closed: list[bool] = []

    def endless() -> Iterator[None]:
        try:
            while True:
                steps.append(-1)
                if len(steps) == 8:
                    jobs.close()  # shutdown arrives mid-job
                yield
        finally:
            closed.append(True)

    jobs.jobs[0].run, jobs.jobs[0].due = endless, 0.0
    jobs.run_due()
    assert steps[5:] == [-1, -1, -1] and closed == [True]
