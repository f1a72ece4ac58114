"""Events are never dropped: a failing database sends them to an on-disk spool, delivered later
in order and exactly once, also after the process ends without closing (real PostgreSQL)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture

from scrapeshield.clock import ManualClock
from scrapeshield.db.spool import EventSpool, SpoolFull
from scrapeshield.db.store import Database
from scrapeshield.events import EventRecorder, Pseudonymiser
from scrapeshield.policy.loader import parse_policy
from scrapeshield.types import Action, Decision, RequestContext

POLICY = parse_policy("events: {queue_size: 100000}\n")
BLOCK = Decision(Action.BLOCK, 90, ("http-library",), "test")


def ctx(n: int) -> RequestContext:
    return RequestContext(
        ts=1_700_000_000.0 + n, ip=f"203.0.113.{n % 250}", network="203.0.113.0/24", scheme="http",
        method="GET", path=f"/api/v1/users/{n}", route="profile_api", record=f"user:{n}", headers=(),
        user_agent="curl/8.5.0", account="", session="", token="", fingerprint="f", tls_fingerprint="",
        referer="", pass_cookie="", is_asset=False, cost=1, host="", client_hints=None, header_names=(),
    )


def recorder_for(db: Database, spool_dir: Path, **kwargs: Any) -> EventRecorder:
    return EventRecorder(db, POLICY, ManualClock(), Pseudonymiser(b"k" * 32),
                         spool=EventSpool(spool_dir, kwargs.pop("max_bytes", 1 << 26)), **kwargs)


def record(recorder: EventRecorder, start: int, count: int, flush_every: int = 100) -> None:
    for n in range(start, start + count):
        recorder(ctx(n), BLOCK)
        if flush_every and (n + 1 - start) % flush_every == 0:
            recorder.flush()
    recorder.flush()


def assert_delivered_once_in_order(db: Database, count: int) -> None:
    events = db.recent_events(limit=count + 10)
    assert len(events) == count == db.count_events(), "every event, none twice"
    assert len({e["uid"] for e in events}) == count
    ts = [e["ts"] for e in reversed(events)]  # by insertion (id) order
    assert ts == sorted(ts), "stored in the order they were recorded"


def eventually(check: Callable[[], bool], seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def test_postgres_down_spools_then_delivers_in_order_exactly_once(
    pg_server: PostgresServer, tmp_path: Path  # noqa: F811
) -> None:
    db = Database(pg_server.create_database())
    recorder = recorder_for(db, tmp_path / "spool")
    record(recorder, 0, 300)
    assert recorder.recorded == 300 and recorder.spooled == 0
    pg_server.stop()
    try:
        record(recorder, 300, 500)
        assert recorder.spooled == 500 and recorder.spool_pending == 500 and recorder.spool_bytes > 0
        assert not recorder.sink_ok and recorder.write_errors >= 1 and recorder.dropped == 0
    finally:
        pg_server.start()
    record(recorder, 800, 100)  # the spool goes first, then the new ones
    assert recorder.spool_pending == 0 and recorder.spool_bytes == 0 and recorder.sink_ok
    assert_delivered_once_in_order(db, 900)
    assert os.path.getsize(tmp_path / "spool" / "events-0.jsonl") == 0, "the delivered spool is emptied"
    recorder.close()
    db.close()


CHILD = """
import os, sys
sys.path.insert(0, {tests!r})
from test_events_durable import BLOCK, ctx, recorder_for
from scrapeshield.db.store import Database
from pathlib import Path
recorder = recorder_for(Database({url!r}), Path({spool!r}))
print("ready", flush=True)
sys.stdin.readline()  # the parent stops PostgreSQL meanwhile
for n in range(200):
    recorder(ctx(n), BLOCK)
recorder.flush()
print("spooled", recorder.spooled, flush=True)
os._exit(0)  # no close(): what is on disk is all that survives
"""


def test_spool_is_delivered_by_the_next_process(pg_server: PostgresServer, tmp_path: Path) -> None:  # noqa: F811
    url = pg_server.create_database()
    spool = tmp_path / "spool"
    code = CHILD.format(tests=str(Path(__file__).parent), url=url, spool=str(spool))
    with open(tmp_path / "child.log", "wb") as errors, subprocess.Popen(
        [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, text=True
    ) as child:
        assert child.stdout is not None and child.stdin is not None
        assert child.stdout.readline().strip() == "ready", (tmp_path / "child.log").read_text()
        pg_server.stop()
        try:
            child.stdin.write("go\n")
            child.stdin.flush()
            assert child.stdout.readline().split() == ["spooled", "200"], (tmp_path / "child.log").read_text()
            assert child.wait(timeout=30) == 0
        finally:
            pg_server.start()
    db = Database(url)
    assert db.count_events() == 0
    recorder = recorder_for(db, spool)
    assert recorder.spool_pending == 200, "the spool is read on start"
    recorder.flush()
    assert_delivered_once_in_order(db, 200)
    recorder.close()
    db.close()


def test_sqlite_directory_gone_then_back(tmp_path: Path) -> None:
    (tmp_path / "db").mkdir()
    db = Database(f"sqlite:///{tmp_path / 'db' / 'events.db'}")
    recorder = recorder_for(db, tmp_path / "spool")
    record(recorder, 0, 50)
    (tmp_path / "db").rename(tmp_path / "away")
    db.engine.dispose()  # pooled connections would still reach the moved file
    record(recorder, 50, 150)
    assert recorder.spooled == 150 and recorder.recorded == 50
    (tmp_path / "away").rename(tmp_path / "db")
    recorder.flush()
    assert_delivered_once_in_order(db, 200)
    recorder.close()


def test_a_delivery_the_offset_missed_is_not_stored_twice(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    failing = recorder_for(db, tmp_path / "spool", sink=_fail)
    record(failing, 0, 120)
    assert failing.spooled == 120
    failing.close()
    spool = EventSpool(tmp_path / "spool")
    rows, _, _ = spool.read(1000)
    spool.close()
    db.write_events(rows[:70])  # delivered, then the process died before recording the offset
    recorder = recorder_for(db, tmp_path / "spool")
    recorder.flush()
    assert_delivered_once_in_order(db, 120)
    recorder.close()


def test_spool_is_bounded_and_says_so_when_full(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    broken = True

    def sink(rows: list[dict[str, Any]]) -> None:
        if broken:
            raise ConnectionError("database unreachable")
        db.write_events(rows)

    recorder = recorder_for(db, tmp_path / "spool", sink=sink, max_bytes=40_000)
    with caplog.at_level(logging.WARNING, logger="scrapeshield.events"):
        record(recorder, 0, 400, flush_every=20)
    assert 0 < recorder.spool_dropped == recorder.dropped < 400
    assert recorder.spooled + recorder.spool_dropped == 400 and recorder.spool_bytes <= 40_000
    full = [r for r in caplog.records if "event spool full" in r.message]
    assert len(full) == 1 and full[0].levelno == logging.ERROR, "said once, not per batch"
    broken = False
    record(recorder, 400, 10)
    assert db.count_events() == recorder.spooled + 10 and recorder.spool_bytes == 0
    recorder.close()


def test_torn_last_write_is_cut_on_open(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path)
    spool.append([{"uid": str(i)} for i in range(10)])
    spool.close()
    with open(tmp_path / "events-0.jsonl", "ab") as handle:
        handle.write(b'{"uid": "torn')
    again = EventSpool(tmp_path)
    rows, position, lines = again.read(100)
    assert [r["uid"] for r in rows] == [str(i) for i in range(10)] and lines == again.pending_events == 10
    again.commit(position, lines)
    assert again.pending_bytes == 0 and json.loads((tmp_path / "events-0.offset").read_text()) == 0
    again.close()


def test_a_partly_delivered_spool_is_compacted_to_make_room(tmp_path: Path) -> None:
    spool = EventSpool(tmp_path, max_bytes=3000)
    batch = [{"uid": f"{i}", "pad": "x" * 80} for i in range(20)]  # about 2 kB
    spool.append(batch)
    rows, position, lines = spool.read(15)
    spool.commit(position, lines)  # 15 delivered, 5 pending
    with pytest.raises(SpoolFull):
        spool.append(batch + batch)  # more than the bound even after compaction: refused whole
    spool.append(batch)  # fits once the delivered part is dropped
    assert spool.offset == 0 and spool.pending_events == 25 and spool.size <= 3000
    spool.close()
    again = EventSpool(tmp_path, max_bytes=3000)  # what a restart finds
    rows, _, _ = again.read(100)
    assert [r["uid"] for r in rows] == [str(i) for i in range(15, 20)] + [str(i) for i in range(20)]
    again.close()


def test_each_process_takes_its_own_spool_slot(tmp_path: Path) -> None:
    first, second = EventSpool(tmp_path), EventSpool(tmp_path)
    assert (first.path.name, second.path.name) == ("events-0.jsonl", "events-1.jsonl")
    first.close()
    third = EventSpool(tmp_path)
    assert third.path.name == "events-0.jsonl", "a restart takes the freed slot back"
    second.close()
    third.close()


def test_background_writer_spools_and_recovers_without_blocking_requests(
    pg_server: PostgresServer, tmp_path: Path  # noqa: F811
) -> None:
    db = Database(pg_server.create_database())
    recorder = recorder_for(db, tmp_path / "spool", retry_max=0.2)
    recorder.start()
    record(recorder, 0, 200, flush_every=0)
    pg_server.stop()
    try:
        started = time.monotonic()
        for n in range(200, 2200):
            recorder(ctx(n), BLOCK)  # the request path: never waits for the database or the disk
        assert time.monotonic() - started < 2.0
        eventually(lambda: recorder.spooled >= 1000)
    finally:
        pg_server.start()
    eventually(lambda: recorder.spool_pending == 0 and db.count_events() == 2200)
    recorder.close()
    assert_delivered_once_in_order(db, 2200)
    db.close()


def _fail(rows: list[dict[str, Any]]) -> None:
    raise ConnectionError("database unreachable")


def test_without_a_spool_events_wait_in_the_queue(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    recorder = EventRecorder(db, POLICY, ManualClock(), Pseudonymiser(b"k"), sink=_fail)
    record(recorder, 0, 30)
    assert recorder.write_errors >= 1 and recorder.dropped == 0 and recorder.spool_bytes == 0
    recorder._sink = None  # the database answers again
    recorder.flush()
    assert_delivered_once_in_order(db, 30)
    recorder.close()
