"""Live figures for the overview and the alert job, kept by a decision listener.

Per 10-second bucket: decisions per action; per minute: the distinct personal records
served (allowed). Exact for this node (stored events sample allows, so they cannot give
these); bounded memory: ``KEEP`` buckets, and distinct records are counted in a set only
for the current minute (``MAX_RECORDS`` at most, then counted as at least that many).

It also remembers the recent client addresses (IPs and networks), in memory only and
bounded, so that an analyst can block a client the console shows by its pseudonym. The
request path only notes an address; pseudonyms are computed when an analyst looks one up
(a keyed hash per request would cost more than the rest of this listener).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final

from scrapeshield.actions.values import action_value
from scrapeshield.types import Action, Decision, RequestContext

STEP: Final = 10  # seconds per action bucket
KEEP: Final = 180  # buckets kept: 30 minutes
MAX_RECORDS: Final = 200_000
MAX_ADDRESSES = 200_000


class Monitor:
    def __init__(self, pseudonymise: Callable[[str], str]) -> None:
        self.pseudonymise = pseudonymise
        self._lock = threading.Lock()
        self._actions: dict[int, dict[str, int]] = {}  # bucket start → action → count
        self._current: tuple[int, dict[str, int]] = (-1, {})  # the last request's bucket, its counts
        self._records_minute = 0
        self._records: set[str] = set()
        self._served: dict[int, int] = {}  # minute start → distinct records served
        self._seen: dict[str, None] = {}  # recent IPs and networks, in the order first seen
        self._index: dict[str, str] = {}  # pseudonym → address, for the first _indexed of _seen
        self._indexed = 0
        self._generation = 0  # bumped when _seen is cleared
        self.signins: dict[str, int] = {}  # outcome → count (console sign-ins)

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        ts = int(ctx.ts)
        bucket = ts // STEP * STEP
        # The bucket of the last request, and its counts, in one tuple (swapped whole, so a
        # thread never pairs one bucket with another's counts): nearly every request is in it.
        current = self._current
        if current[0] == bucket:
            counts = current[1]
        else:
            counts = self._bucket(bucket)
        value = action_value(decision.action)
        counts[value] = counts.get(value, 0) + 1
        record = ctx.record
        if record and value == "allow":
            self._served_record(ts // 60 * 60, record)
        seen = self._seen
        ip = ctx.ip
        if ip not in seen:  # an address and its network are noted, and forgotten, together
            if len(seen) >= MAX_ADDRESSES:
                if value == "allow":
                    return
                with self._lock:  # forget the oldest all at once: memory stays bounded
                    seen.clear()
                    self._index.clear()
                    self._indexed = 0
                    self._generation += 1
            seen[ip] = None
            seen[ctx.network] = None

    def _bucket(self, bucket: int) -> dict[str, int]:
        """The counts of ``bucket``, made when new (older buckets beyond ``KEEP`` go)."""
        counts = self._actions.get(bucket)
        if counts is None:
            with self._lock:
                counts = self._actions.setdefault(bucket, {})
                for old in [b for b in self._actions if b <= bucket - KEEP * STEP]:
                    del self._actions[old]
        self._current = (bucket, counts)
        return counts

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

    def address_of(self, pseudonym: str) -> str | None:
        """The IP (or network) behind a pseudonym seen recently on this node, if known."""
        with self._lock:
            found = self._index.get(pseudonym)
            start, generation = self._indexed, self._generation
            if found is not None or start >= len(self._seen):
                return found
            # list() of a dict of strings runs without releasing the GIL: a safe snapshot.
            fresh = list(self._seen)[start:]
        # The keyed hashes of the addresses seen since the last look-up, outside the lock
        # (after a flood that is up to MAX_ADDRESSES of them; the request path never waits).
        pseudonymise = self.pseudonymise
        hashed = {pseudonymise(address): address for address in fresh}
        with self._lock:
            if self._generation == generation and self._indexed == start:
                self._index.update(hashed)
                self._indexed = start + len(fresh)
        return hashed.get(pseudonym)

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
