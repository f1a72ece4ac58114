"""The background job runner: due jobs run, a failing job does not stop the others."""

from __future__ import annotations

import threading

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
