"""Live figures for the overview and the alert job, kept by a decision listener.

Per 10-second bucket: decisions per action; per minute: the distinct personal records
served (allowed). Exact for this node (stored events sample allows, so they cannot give
these); bounded memory: ``KEEP`` buckets, and distinct records are counted in a set only
for the current minute (``MAX_RECORDS`` at most, then counted as at least that many).

It also remembers which IP each recent client pseudonym stood for, in memory only and
bounded, so that an analyst can block a client the console shows by its pseudonym.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from scrapeshield.types import Action, Decision, RequestContext

STEP = 10  # seconds per action bucket
KEEP = 180  # buckets kept: 30 minutes
MAX_RECORDS = 200_000
MAX_ADDRESSES = 200_000


class Monitor:
    def __init__(self, pseudonymise: Callable[[str], str]) -> None:
        self.pseudonymise = pseudonymise
        self._lock = threading.Lock()
        self._actions: dict[int, dict[str, int]] = {}  # bucket start → action → count
        self._records_minute = 0
        self._records: set[str] = set()
        self._served: dict[int, int] = {}  # minute start → distinct records served
        self._addresses: dict[str, str] = {}  # pseudonym → IP or network
        self.signins: dict[str, int] = {}  # outcome → count (console sign-ins)

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        bucket = int(ctx.ts) // STEP * STEP
        counts = self._actions.get(bucket)
        if counts is None:
            with self._lock:
                counts = self._actions.setdefault(bucket, {})
                for old in [b for b in self._actions if b <= bucket - KEEP * STEP]:
                    del self._actions[old]
        counts[decision.action.value] = counts.get(decision.action.value, 0) + 1
        if ctx.record and decision.action is Action.ALLOW:
            self._served_record(int(ctx.ts) // 60 * 60, ctx.record)
        if decision.action is not Action.ALLOW or len(self._addresses) < MAX_ADDRESSES:
            self._remember(ctx.ip)
            self._remember(ctx.network)

    def _served_record(self, minute: int, record: str) -> None:
        if minute != self._records_minute:
            with self._lock:
                if minute > self._records_minute:
                    self._records_minute, self._records = minute, set()
                    for old in [m for m in self._served if m <= minute - KEEP * STEP]:
                        del self._served[old]
        if minute == self._records_minute and len(self._records) < MAX_RECORDS:
            self._records.add(record)
            self._served[minute] = len(self._records)

    def _remember(self, address: str) -> None:
        if len(self._addresses) >= MAX_ADDRESSES:
            self._addresses.clear()  # forget the oldest all at once: memory stays bounded
        self._addresses[self.pseudonymise(address)] = address

    def address_of(self, pseudonym: str) -> str | None:
        """The IP (or network) behind a pseudonym seen recently on this node, if known."""
        return self._addresses.get(pseudonym)

    def series(self, now: float, span: int = 900) -> dict[str, object]:
        """Decisions per action per 10 s, and distinct records served per minute, up to now."""
        end = int(now) // STEP * STEP
        starts = list(range(end - span + STEP, end + STEP, STEP))
        with self._lock:
            actions = {b: dict(c) for b, c in self._actions.items()}
            served = dict(self._served)
        minute_end = int(now) // 60 * 60
        minutes = list(range(minute_end - 29 * 60, minute_end + 60, 60))
        return {
            "step": STEP,
            "times": starts,
            "actions": {a.value: [actions.get(b, {}).get(a.value, 0) for b in starts] for a in Action},
            "minutes": minutes,
            "records_served": [served.get(m, 0) for m in minutes],
        }

    def requests_since(self, since: float) -> dict[str, int]:
        with self._lock:
            buckets = [c for b, c in self._actions.items() if b >= since]
        total: dict[str, int] = {}
        for counts in buckets:
            for action, n in counts.items():
                total[action] = total.get(action, 0) + n
        return total

    def records_served(self, since: float) -> int:
        """The most distinct records served in any one minute since ``since``."""
        with self._lock:
            return max((n for m, n in self._served.items() if m >= since // 60 * 60), default=0)
