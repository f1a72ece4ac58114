"""The grouping job on ``shield.jobs``: new events → grouper → campaigns table.

Incremental: each run reads only events stored since the last one (by row id, in
bounded batches) into a grouper that forgets clients idle for longer than the window.
The first run after a start reads the whole window back, so a restart rebuilds the
same campaigns. Saving is an upsert by stable id: running twice changes nothing.
The job also loads list entries written by other processes (``campaigns act`` from the
command line, another node) into the running engine. ``purge`` deletes membership rows past
the events' retention period unless a case holds them (``store.purge_members``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import select

from scrapeshield.campaigns.grouping import CampaignGrouper
from scrapeshield.campaigns.store import purge_members, save
from scrapeshield.clock import Clock
from scrapeshield.db.models import EventRow
from scrapeshield.db.store import Database
from scrapeshield.lists import Lists

log = logging.getLogger("scrapeshield.campaigns")

EVERY = 60.0  # seconds between runs
WINDOW = 86400.0  # clients idle for longer leave the grouping
BATCH = 5000
MAX_BATCHES = 200  # per run: a backlog is worked off over several runs
STEP = 500  # events observed per step of the job (a few ms of Python between yields)
MIN_SCORE = 20.0  # campaigns below this are not stored (a crowd of ordinary browsers)

_COLUMNS = ("id", "ts", "client", "network", "fingerprint", "user_agent", "account", "route",
            "record", "action", "score", "reasons")


class CampaignJob:
    def __init__(self, db: Database, clock: Clock, *, lists: Lists | None = None,
                 window: float = WINDOW, min_score: float = MIN_SCORE) -> None:
        self.db = db
        self.clock = clock
        self.lists = lists
        self.window = window
        self.purged = 0  # member rows deleted by ``purge``
        self.grouper = CampaignGrouper(min_score=min_score)
        self.watermark: int | None = None
        self.saved = 0
        self.stored = 0
        self._written: dict[str, dict[str, int]] = {}  # members as last saved (``save``)

    def __call__(self) -> int:
        return self.run()

    def run(self) -> int:
        """One pass; returns the number of campaigns stored."""
        for _ in self.steps():
            pass
        return self.stored

    def steps(self) -> Iterator[None]:
        """One pass in pieces of at most STEP events (what ``shield.jobs`` runs): the job
        shares the GIL with the request path, which waits for it between pieces, not for the
        whole backlog. ``stored`` holds the number of campaigns stored at its end."""
        self.stored = 0
        now = self.clock.now()
        fresh = 0
        for read in self._read_new(now):
            fresh += read
            yield
        self.grouper.forget_before(now - self.window)
        self._sync_lists(now)
        if not fresh and self.saved:
            return
        yield
        campaigns = self.grouper.campaigns()
        if not campaigns:
            self._written.clear()  # no campaign now: its rows may be purged before one forms again
        self.saved = self.stored = save(self.db, campaigns, now, self._written) if campaigns else 0

    def purge(self, before: float) -> None:
        """Delete the membership rows last seen before ``before`` (the shield's retention job;
        on the jobs thread, as ``steps``)."""
        gone = purge_members(self.db, before)
        if gone:
            self.purged += gone
            self._written.clear()  # a purged member that comes back is written again
            log.info("campaigns: %d member rows past the retention period deleted", gone)

    def _read_new(self, now: float) -> Iterator[int]:
        """Observe the events stored since the watermark; yields after each STEP of them."""
        columns = [getattr(EventRow, c) for c in _COLUMNS]
        for _ in range(MAX_BATCHES):
            query = select(*columns).order_by(EventRow.id).limit(BATCH)
            if self.watermark is None:
                query = query.where(EventRow.ts >= now - self.window)
            else:
                query = query.where(EventRow.id > self.watermark)
            with self.db.engine.connect() as conn:
                rows = conn.execute(query).all()
            if not rows:
                self.watermark = self.watermark or 0
                break
            for start in range(0, len(rows), STEP):
                for row in rows[start:start + STEP]:
                    self.grouper.observe(_event(row))
                yield min(STEP, len(rows) - start)
            self.watermark = int(rows[-1][0])  # "id", the first of _COLUMNS
            if len(rows) < BATCH:
                break

    def _sync_lists(self, now: float) -> None:
        if self.lists is None:
            return
        present = {(e.kind, e.value, e.expires) for e in self.lists.entries()}
        for entry in self.db.live_list_entries(now):
            if (entry.kind, entry.value, entry.expires) not in present:
                self.lists.add(entry)


def _event(row: Sequence[Any]) -> dict[str, Any]:
    # Zipped with the names rather than dict(row._mapping): SQLAlchemy builds a mapping's keys
    # in Python for each row, a third of what reading an event cost the job.
    return dict(zip(_COLUMNS, row, strict=True))
