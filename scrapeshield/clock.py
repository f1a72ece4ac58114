"""The only module that reads time: everything else is handed a Clock.

Replay and simulation pass event time through a ManualClock; tests advance it
instead of sleeping.
"""

from __future__ import annotations

import time
from typing import Protocol


class Clock(Protocol):
    def now(self) -> float:
        """Seconds since the epoch (wall time of the event being decided)."""
        ...


class SystemClock:
    __slots__ = ()

    def now(self) -> float:
        return time.time()  # noqa: TID251 - the one sanctioned reader of time


class ManualClock:
    __slots__ = ("_now",)

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError("a clock cannot go backwards")
        self._now += seconds

    def set(self, when: float) -> None:
        self._now = when


def monotonic() -> float:
    """Monotonic seconds, for measuring durations (timeouts, benchmarks)."""
    return time.monotonic()  # noqa: TID251
