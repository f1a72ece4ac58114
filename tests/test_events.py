"""Stage 6: events in the database, pseudonymised, sampled, retained, never lost on a write error."""

from __future__ import annotations

import hashlib
import hmac
import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scrapeshield.clock import ManualClock
from scrapeshield.db.store import Database
from scrapeshield.events import STEP, EventRecorder, Pseudonymiser, _json_list
from scrapeshield.policy.loader import parse_policy
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.types import Action, Decision

CURL = [("user-agent", "curl/8.5.0")]
CHROME = [
    ("host", "127.0.0.1"),
    ("sec-ch-ua", '"Chromium";v="126"'),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
    ),
    ("accept", "text/html"),
    ("sec-fetch-mode", "navigate"),
    ("accept-encoding", "gzip"),
    ("accept-language", "en"),
]


def shield_with(tmp_path: Path, policy: str = "") -> tuple[Shield, ManualClock]:
    """A shield on a manual clock: the embedded policy, or the given policy text."""
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    clock = ManualClock()
    settings = Settings.resolve(data_dir=str(tmp_path), policy_path=str(path) if policy else None)
    return Shield(settings, clock), clock


def ask(shield: Shield, clock: ManualClock, path: str, headers: list[tuple[str, str]], ip: str) -> Decision:
    clock.advance(0.5)
    return shield.engine.decide(shield.engine.contexts.build(clock.now(), ip, "GET", path, headers))


def test_non_allow_decisions_recorded_with_reasons_and_pseudonyms(tmp_path: Path) -> None:
    shield, clock = shield_with(tmp_path)
    decision = ask(shield, clock, "/api/v1/users/3", CURL, "203.0.113.5")
    assert decision.action is Action.CHALLENGE
    shield.recorder.flush()
    [event] = shield.db.recent_events()
    assert event["action"] == "challenge" and event["record"] == "user:3"
    assert any("http-library" in r for r in event["reasons"])
    assert event["client"].startswith("p:") and "203.0.113" not in str(event)
    assert event["client"] == shield.pseudonymise("203.0.113.5")  # stable: analysts can look one up
    shield.close()


def test_pseudonyms_depend_on_the_platform_key() -> None:
    assert Pseudonymiser(b"a" * 32)("192.0.2.1") != Pseudonymiser(b"b" * 32)("192.0.2.1")


def test_pseudonyms_stay_the_keyed_hash_as_the_cache_turns_over() -> None:
    pseudonymise = Pseudonymiser(b"k" * 32, generation=8)
    values = [f"198.51.100.{n % 37}" for n in range(500)] + [f"2001:db8::{n:x}" for n in range(50)]
    for value in values:
        expected = hmac.new(b"k" * 32, value.encode(), hashlib.sha256).digest()[:12].hex()
        assert pseudonymise(value) == "p:" + expected
        assert len(pseudonymise) <= 16


def test_a_returning_client_stays_cached_among_one_off_addresses() -> None:
    """Two generations: a value used again before its generation is dropped moves back to
    the young one, so one-off addresses never push out the clients that keep coming."""
    pseudonymise = Pseudonymiser(b"k" * 32, generation=10)
    # A cached pseudonym comes back as the very string first made; a recomputed one would be
    # an equal but new one (the keyed hash is not asked again: the cache answered).
    first = pseudonymise("203.0.113.7")
    one_offs = set()
    for n in range(1000):
        assert pseudonymise("203.0.113.7") is first, f"hashed again after {n} one-off addresses"
        one_off = pseudonymise(f"10.0.{n // 256}.{n % 256}")
        assert one_off not in one_offs
        one_offs.add(one_off)
    assert len(pseudonymise) <= 20


def test_ips_kept_in_clear_when_the_policy_says_so(tmp_path: Path) -> None:
    shield, clock = shield_with(tmp_path, "events: {pseudonymise_ips: false}\n")
    ask(shield, clock, "/", CURL, "203.0.113.6")
    shield.recorder.flush()
    assert shield.db.recent_events()[0]["client"] == "203.0.113.6"
    shield.close()


def test_allows_are_sampled(tmp_path: Path) -> None:
    shield, clock = shield_with(tmp_path, "events: {sample_allow: 0.1}\n")
    for i in range(100):
        assert ask(shield, clock, "/", CHROME, f"198.51.100.{i}").action is Action.ALLOW
    shield.recorder.flush()
    assert shield.db.count_events() == 10
    shield.close()


def test_retention_purges_old_events(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'e.db'}")
    clock = ManualClock()
    recorder = EventRecorder(db, parse_policy("events: {retention_days: 1}\n"), clock, Pseudonymiser(b"k"))
    (tmp_path / "s").mkdir()
    shield, _ = shield_with(tmp_path / "s")
    ctx = shield.engine.contexts.build(clock.now(), "192.0.2.9", "GET", "/", CURL)
    recorder(ctx, Decision(Action.BLOCK, 90, ("x",), "test"))
    recorder.flush()
    assert db.purge_events(clock.now() - 86400) == 0
    clock.advance(2 * 86400)
    assert db.purge_events(clock.now() - 86400) == 1
    shield.close()


def test_write_failure_keeps_events_for_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shield, clock = shield_with(tmp_path)
    for i in range(5):
        ask(shield, clock, f"/api/v1/users/{i + 1}", CURL, "203.0.113.7")
    real_write = shield.db.write_events

    def failing(rows: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(shield.db, "write_events", failing)
    shield.recorder.flush()
    assert shield.recorder.write_errors == 1 and shield.db.count_events() == 0
    monkeypatch.setattr(shield.db, "write_events", real_write)
    shield.recorder.flush()
    assert shield.db.count_events() == 5
    shield.close()


def test_queue_is_bounded_and_drops_are_counted(tmp_path: Path) -> None:
    shield, clock = shield_with(tmp_path, "events: {queue_size: 100}\n")
    for i in range(150):
        ask(shield, clock, "/", CURL, f"203.0.113.{i % 250}")
    assert shield.recorder.dropped == 50
    shield.recorder.flush()
    assert shield.db.count_events() == 100
    shield.close()


def test_background_writer_delivers_and_close_flushes(tmp_path: Path) -> None:
    shield, clock = shield_with(tmp_path)
    shield.start()
    for i in range(20):
        ask(shield, clock, f"/api/v1/users/{i + 1}", CURL, "203.0.113.8")
    shield.close()
    assert Database(shield.settings.db_url).count_events() == 20


@pytest.mark.parametrize(("write_size", "failing", "first", "final"), [
    # writes of one step each, to see one in the middle fail: the ones before it are stored
    (STEP, 3, [STEP] * 3, [STEP] * 5 + [3]),
    # the default shape: steps gathered into writes of up to write_size rows
    (3 * STEP, 1, [3 * STEP], [3 * STEP, 3 * STEP, STEP + 3]),
])
def test_a_large_queue_is_delivered_whole_in_steps_and_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_size: int, failing: int,
    first: list[int], final: list[int],
) -> None:
    """The writer builds rows one step at a time (holding the GIL for one step's rows) and
    writes up to ``write_size`` of them in one transaction; every event still arrives once,
    in order, also when a write fails and is retried."""
    shield, clock = shield_with(tmp_path)
    shield.recorder.write_size = write_size
    count = STEP * 4 + 3
    for i in range(count):
        ask(shield, clock, f"/api/v1/users/{i + 1}", CURL, f"203.0.113.{i % 200}")
    real_write = shield.db.write_events
    sizes: list[int] = []

    def failing_once(rows: list[dict[str, object]]) -> None:
        sizes.append(len(rows))
        if len(sizes) == failing:
            raise OSError("disk full")  # this write fails: it and the rest wait
        real_write(rows)

    monkeypatch.setattr(shield.db, "write_events", failing_once)
    shield.recorder.flush()
    assert sizes == first and shield.db.count_events() == sum(first[:-1])
    shield.recorder.flush()
    assert sizes == final and shield.db.count_events() == count
    records = [e["record"] for e in shield.db.recent_events(limit=count)]
    assert sorted(records, key=lambda r: int(r.split(":")[1])) == [f"user:{i + 1}" for i in range(count)]
    assert len(set(records)) == count
    shield.close()


def test_events_arriving_during_a_flush_wait_for_the_next_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A flush writes what was queued when it began; what the request path queues meanwhile
    goes with the next flush, not in a small write of its own (dearer per row)."""
    shield, clock = shield_with(tmp_path)
    for i in range(120):
        ask(shield, clock, f"/api/v1/users/{i + 1}", CURL, f"203.0.113.{i % 200}")
    real_write = shield.db.write_events
    sizes: list[int] = []

    def write_while_requests_come(rows: list[dict[str, object]]) -> None:
        sizes.append(len(rows))
        for i in range(7):
            ask(shield, clock, "/api/v1/users/9", CURL, f"198.51.100.{i}")
        real_write(rows)

    monkeypatch.setattr(shield.db, "write_events", write_while_requests_come)
    shield.recorder.flush()
    assert sizes == [120] and len(shield.recorder._queue) == 7
    shield.recorder.flush()
    assert sizes == [120, 7] and len(shield.recorder._queue) == 7
    monkeypatch.setattr(shield.db, "write_events", real_write)
    shield.recorder.flush()
    assert shield.db.count_events() == 134 and not shield.recorder._queue
    shield.close()


@given(st.lists(st.text(max_size=40), max_size=5))
def test_reasons_column_is_json_dumps(reasons: list[str]) -> None:
    """The writer's fast quoting of plain reasons stores exactly what json.dumps writes."""
    assert _json_list(tuple(reasons)) == json.dumps(reasons)
