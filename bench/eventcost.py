"""What the event writer costs per event as the events table grows (load-independent, CPU time).

    python -m bench.eventcost [REQUESTS] [INDEXES_TO_DROP]

REQUESTS of the HTTP bench mix (bench/http_parts.py's scopes: 100k clients, every third request
a profile read, so about a third of them become events) are decided in chunks of 6,000 on one
shield, and after each chunk the recorder's queue is flushed into its SQLite database as the
writer thread would (writes of up to ``events.WRITE`` rows). Printed: per event, the writer's
thread CPU time and the database write's share of it, at a few table sizes, then the mean over
the second half of the run. INDEXES_TO_DROP (comma-separated names, e.g.
``ix_events_network,ix_events_client_ts``) are dropped first, to see what each costs.

Why: bench/jobcost.py writes into an empty table, but a serving shield's table holds the
retention period's events. Each event goes into two indexes keyed by hashes (client and
network) at random places, so a write dirties about one page of each per row once the indexes
outgrow a transaction's rows.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import text

from bench import apps, http_parts
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

CHUNK = 6000  # requests decided between two flushes


def run(requests: int = 600_000, drop: Sequence[str] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(apps.POLICY)))
        engine, db, recorder = shield.engine, shield.db, shield.recorder
        with db.engine.begin() as conn:
            for name in drop:
                conn.execute(text(f'DROP INDEX IF EXISTS "{name}"'))
        in_db = [0.0]
        write = db.write_events

        def timed_write(rows: Sequence[Any]) -> None:
            start = time.thread_time()
            try:
                write(rows)
            finally:
                in_db[0] += time.thread_time() - start

        db.write_events = timed_write  # type: ignore[method-assign]  # the recorder looks it up at each write
        steps: list[tuple[int, float, float]] = []  # (table rows after, us per event, of which the database)
        stored = 0
        for first in range(1, requests - CHUNK + 2, CHUNK):
            for counter in range(first, first + CHUNK):
                engine.decide(engine.contexts.from_asgi(http_parts.scope(counter), shield.clock.now()))
            queued = len(recorder._queue)
            if not queued:
                continue
            db_before, start = in_db[0], time.thread_time()
            recorder.flush()
            spent = time.thread_time() - start
            stored += queued
            steps.append((stored, spent / queued * 1e6, (in_db[0] - db_before) / queued * 1e6))
        shield.close()
    late = steps[len(steps) // 2:]
    shown = steps[:: max(1, len(steps) // 6)]
    return {
        "dropped_indexes": list(drop),
        "by_table_rows": {rows: {"us_per_event": round(total, 2), "of_which_database": round(dbase, 2)}
                          for rows, total, dbase in shown},
        "second_half_us_per_event": round(statistics.mean(s[1] for s in late), 2),
        "second_half_database_us_per_event": round(statistics.mean(s[2] for s in late), 2),
        "events_stored": stored,
    }


if __name__ == "__main__":
    import json

    args = sys.argv[1:]
    print(json.dumps(run(int(args[0]) if args else 600_000,
                         [n for n in args[1].split(",") if n] if len(args) > 1 else ()), indent=1))
