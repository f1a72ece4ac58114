"""The contract every database passes (SQLite and PostgreSQL now; any SQLAlchemy URL later).

Each ``check_*`` takes a factory that returns the URL of a fresh, empty database
(it may be opened by several ``Database`` objects at once) and raises AssertionError
naming the broken promise. Run them all with ``check_database``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from scrapeshield.db.store import Database
from scrapeshield.lists import ListEntry
from scrapeshield.types import Action

UrlFactory = Callable[[], str]


def event(n: int, **changes: Any) -> dict[str, Any]:
    """A complete event row, ``n`` making it distinct (ts, uid, record)."""
    row: dict[str, Any] = {
        "uid": f"contract-{n}", "ts": 1_700_000_000.0 + n, "client": f"p:{n % 3}", "network": "p:net",
        "method": "GET", "path": f"/api/v1/users/{n}", "route": "profile_api", "record": f"user:{n}",
        "user_agent": "curl/8.5.0", "account": "", "fingerprint": "ja4:abc", "action": "block",
        "score": float(n % 100), "rule": "test", "reasons": '["http-library"]',
    }
    row.update(changes)
    return row


def check_events_round_trip(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([event(i, action="challenge" if i % 2 else "block") for i in range(10)])
    assert db.count_events() == 10
    recent = db.recent_events(limit=3)
    assert [e["record"] for e in recent] == ["user:9", "user:8", "user:7"], "newest first, limited"
    assert recent[0]["reasons"] == ["http-library"], "reasons come back as a list"
    assert recent[0]["uid"] == "contract-9" and recent[0]["ts"] == 1_700_000_009.0
    challenges = db.recent_events(action="challenge")
    assert len(challenges) == 5 and all(e["action"] == "challenge" for e in challenges)
    db.write_events([])
    db.close()


def check_redelivered_events_stored_once(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([event(1), event(2), event(1)])
    db.write_events([event(2), event(3)])
    assert db.count_events() == 3, "an event uid is stored once, within and across batches"
    db.write_events([event(4, uid=None), event(5, uid=None)])
    assert db.count_events() == 5, "rows without a uid (older versions) are all kept"
    db.close()


def check_large_batches_with_redeliveries(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([event(i) for i in range(450)])  # more rows than one INSERT statement holds
    db.write_events([event(i) for i in range(440, 1000)] + [event(i) for i in range(990, 1010)])
    assert db.count_events() == 1010, "every event stored once, whatever the batch size"
    assert [e["uid"] for e in db.recent_events(limit=2)] == ["contract-1009", "contract-1008"]
    db.write_events([event(2000), event(2001, client=None)] + [event(i) for i in range(2002, 2300)])
    assert db.count_events() == 1309 and db.rejected == 1, "a refused row in a large batch"
    db.close()


def check_refused_event_does_not_hold_back_its_batch(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([event(1), event(2, client=None), event(3)])  # NOT NULL: refused everywhere
    assert db.count_events() == 2 and db.rejected == 1, "the bad row is counted, the others stored"
    db.close()


def check_top_clients(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([
        event(1, client="p:a", score=40.0), event(2, client="p:a", score=90.0),
        event(3, client="p:b", score=90.0), event(4, client="p:c", score=10.0),
        event(5, client="p:old", score=99.0, ts=1_600_000_000.0),
    ])
    top = db.top_clients(since=1_700_000_000.0)
    assert [(c["client"], c["max_score"], c["events"]) for c in top] == [
        ("p:a", 90.0, 2), ("p:b", 90.0, 1), ("p:c", 10.0, 1)
    ], "by highest score, then by count; older events left out"
    assert top[0]["last_seen"] == 1_700_000_002.0
    assert len(db.top_clients(since=0, limit=2)) == 2
    db.close()


def check_purge(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.write_events([event(i) for i in range(10)])
    assert db.purge_events(before=1_700_000_004.0) == 4
    assert db.count_events() == 6 and db.purge_events(before=1_700_000_004.0) == 0
    assert min(e["ts"] for e in db.recent_events()) == 1_700_000_004.0
    db.close()


def check_list_entries(new_url: UrlFactory) -> None:
    db = Database(new_url())
    db.add_list_entry(ListEntry("ip", "192.0.2.1", Action.BLOCK, 0, "scraper", "ana"), now=100.0)
    db.add_list_entry(ListEntry("network", "198.51.100.0/24", Action.ALLOW, 500.0, "office", "ana"), 100.0)
    db.add_list_entry(ListEntry("ip", "192.0.2.1", Action.CHALLENGE, 0, "softer", "bo"), now=150.0)
    live = db.live_list_entries(now=200.0)
    assert [(e.kind, e.value, e.action) for e in live] == [
        ("network", "198.51.100.0/24", Action.ALLOW), ("ip", "192.0.2.1", Action.CHALLENGE)
    ], "adding the same kind/value again replaces it"
    assert live[1].created_by == "bo" and live[1].reason == "softer"
    assert [e.value for e in db.live_list_entries(now=600.0)] == ["192.0.2.1"], "expired entries leave"
    assert db.remove_list_entry("ip", "192.0.2.1", now=700.0) is True
    assert db.remove_list_entry("ip", "192.0.2.1", now=701.0) is False, "nothing left to remove"
    assert db.live_list_entries(now=200.0) == [live[0]]
    db.close()


def check_audit_is_append_only_in_order(new_url: UrlFactory) -> None:
    db = Database(new_url())
    for i in range(5):
        db.audit(1000.0 + i, "ana", f"step.{i}", {"n": i, "note": "ünïcødé ✓"})
    trail = db.audit_trail()
    assert [a["action"] for a in trail] == [f"step.{i}" for i in range(4, -1, -1)], "newest first"
    assert trail[0] == {"ts": 1004.0, "actor": "ana", "action": "step.4",
                        "detail": {"n": 4, "note": "ünïcødé ✓"}}
    assert len(db.audit_trail(limit=2)) == 2
    db.close()


def check_hostile_text_is_cleaned_not_fatal(new_url: UrlFactory) -> None:
    db = Database(new_url())
    nasty = "é✓😀\x00\ud800" * 400  # emoji, NUL (PostgreSQL refuses it), a lone surrogate; long
    db.write_events([event(1, path=nasty, user_agent=nasty, account=nasty, rule=nasty, record=nasty)])
    [row] = db.recent_events()
    assert len(row["path"]) == 512 and len(row["user_agent"]) == 512 and len(row["account"]) == 128
    assert row["path"].startswith("é✓😀\ufffd?é"), "NUL and lone surrogates replaced, the rest kept"
    db.add_list_entry(ListEntry("account", nasty, Action.BLOCK, 0, nasty, nasty), now=1.0)
    [entry] = db.live_list_entries(now=2.0)
    assert len(entry.value) == 200 and len(entry.reason) == 500 and len(entry.created_by) == 64
    assert db.remove_list_entry("account", nasty, now=3.0), "removal finds what adding stored"
    db.audit(1.0, nasty, nasty, {"v": nasty})
    assert len(db.audit_trail()[0]["actor"]) == 64
    db.close()


def check_concurrent_writers(new_url: UrlFactory) -> None:
    url = new_url()
    first, second = Database(url), Database(url)
    errors: list[BaseException] = []

    def write(db: Database, base: int) -> None:
        try:
            for batch in range(10):
                db.write_events([event(base + batch * 20 + i) for i in range(20)])
                db.audit(float(base + batch), f"writer-{base}", "batch", {"i": batch})
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(db, base)) for db, base in ((first, 0), (second, 10_000))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, f"a writer failed: {errors[0]!r}" if errors else ""
    assert first.count_events() == second.count_events() == 400
    assert len(first.audit_trail(limit=100)) == 20
    first.close()
    second.close()


def check_reopen_keeps_everything(new_url: UrlFactory) -> None:
    url = new_url()
    db = Database(url)
    db.write_events([event(1)])
    db.add_list_entry(ListEntry("ip", "192.0.2.7", Action.BLOCK, 0, "r", "ana"), now=1.0)
    db.audit(1.0, "ana", "list.add", {})
    db.close()
    again = Database(url)  # migrations run again: a no-op
    assert again.count_events() == 1 and len(again.live_list_entries(2.0)) == 1
    assert len(again.audit_trail()) == 1
    again.write_events([event(1)])
    assert again.count_events() == 1, "uids stay unique across opens"
    again.close()


CHECKS = (
    check_events_round_trip,
    check_redelivered_events_stored_once,
    check_refused_event_does_not_hold_back_its_batch,
    check_large_batches_with_redeliveries,
    check_top_clients,
    check_purge,
    check_list_entries,
    check_audit_is_append_only_in_order,
    check_hostile_text_is_cleaned_not_fatal,
    check_concurrent_writers,
    check_reopen_keeps_everything,
)


def check_database(new_url: UrlFactory) -> None:
    for check in CHECKS:
        check(new_url)
