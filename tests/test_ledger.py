"""The evidence ledger: chained entries, signed checkpoints, the feed, many writers at once."""

from __future__ import annotations

import json
import os
import stat
import threading
from pathlib import Path

import pytest
from legal_scenario import CAMPAIGN, HUMAN, ROTATING, WALKER, Scenario
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture
from sqlalchemy import update
from sqlalchemy.exc import OperationalError

from scrapeshield.clock import ManualClock
from scrapeshield.db.models import LedgerEntryRow
from scrapeshield.db.store import Database
from scrapeshield.events import Pseudonymiser
from scrapeshield.legal import keys
from scrapeshield.legal.collector import WindowCollector
from scrapeshield.legal.feed import LedgerFeeder
from scrapeshield.legal.ledger import (
    GENESIS,
    Ledger,
    NewEntry,
    canonical,
    canonical_content,
    chain_hash,
    content,
    sha256,
)
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.types import Action, Decision


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    s.run()
    return s


def test_every_entry_commits_to_the_one_before(scenario: Scenario) -> None:
    entries = scenario.ledger.entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    prev = GENESIS
    for entry in entries:
        assert entry.prev_hash == prev
        assert entry.digest == sha256(canonical(entry.content()))
        assert entry.hash == chain_hash(prev, entry.digest)
        prev = entry.hash
    assert scenario.ledger.verify(scenario.key.public_key()) == []


def test_an_entry_is_hashed_as_the_canonical_form_of_its_content(tmp_path: Path) -> None:
    # The appender splices the body's bytes into the content's; a verifier encodes it whole.
    bodies = [{}, {"a": 1}, {"zeta": [1, 2.5, None], "alpha": {"é": "ü\u2028", "b": True}},
              {"body": "x", "kind": "y", "\u0000": "\"}", "ts": 1e-7, "n": -0.0, "big": 2**70}]
    for body in bodies:
        for ref in (None, "r:1"):
            for subject in ("*all*", "p:ab\"c", "ünï"):
                whole = canonical(content(7, 12.345678, "window", subject, ref, body))
                assert canonical_content(7, 12.345678, "window", subject, ref, canonical(body)) == whole
    ledger = Ledger(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    written = ledger.append([NewEntry("window", "s", b) for b in bodies], 5.0)
    stored = ledger.entries()
    assert [e.digest for e in stored] == [e.digest for e in written]
    assert all(e.digest == sha256(canonical(e.content())) for e in stored)


def test_window_summaries_count_every_decision_and_only_served_records(scenario: Scenario) -> None:
    windows = scenario.ledger.entries(kind="window")
    totals = scenario.ledger.entries(kind="totals")
    assert sum(e.body["requests"] for e in totals) == len(scenario.decisions)
    assert sum(e.body["requests"] for e in windows) == len(scenario.decisions)
    taken = {r for e in windows for r in e.body["records_taken"]}
    assert taken == {ctx.record for ctx, d in scenario.decisions
                     if ctx.record and d.action is Action.ALLOW}
    walker = scenario.pseudonymise(WALKER)
    walker_actions: dict[str, int] = {}
    for entry in windows:
        if entry.subject == walker:
            for action, n in entry.body["actions"].items():
                walker_actions[action] = walker_actions.get(action, 0) + n
    expected: dict[str, int] = {}
    for ctx, d in scenario.decisions:
        if ctx.ip == WALKER:
            expected[d.action.value] = expected.get(d.action.value, 0) + 1
    assert walker_actions == expected
    # No raw address anywhere in the ledger: clients and networks are pseudonyms.
    text = "".join(canonical(e.body).decode() + e.subject for e in scenario.ledger.entries())
    assert WALKER not in text and ROTATING[0] not in text and HUMAN not in text


def test_audit_rows_and_campaign_states_go_in_once(scenario: Scenario, tmp_path: Path) -> None:
    other_node = LedgerFeeder(Ledger(scenario.db), None, scenario.key, scenario.clock)
    assert other_node.run() == 0  # a second node finds the same audit row and campaign state
    assert scenario.feeder.run() == 0
    kinds = [e.kind for e in scenario.ledger.entries()]
    assert kinds.count("audit") == 1 and kinds.count("campaign") == 1
    campaign = scenario.ledger.entries(kind="campaign")[0]
    assert campaign.subject == CAMPAIGN
    assert sorted(campaign.body["members"]) == sorted(
        scenario.pseudonymise(ip) for ip in (*ROTATING, WALKER))


def test_a_changed_row_in_the_database_is_named_by_seq(scenario: Scenario) -> None:
    target = scenario.ledger.entries(kind="window")[3]
    body = dict(target.body, requests=target.body["requests"] + 1)
    with scenario.db.engine.begin() as conn:
        conn.execute(update(LedgerEntryRow).where(LedgerEntryRow.seq == target.seq)
                     .values(body=canonical(body).decode()))
    problems = scenario.ledger.verify(scenario.key.public_key())
    assert problems == [f"ledger entry seq {target.seq}: content does not match its digest (altered)"]


def test_checkpoints_are_signed_by_the_platform_key(scenario: Scenario, tmp_path: Path) -> None:
    checkpoints = scenario.ledger.checkpoints()
    assert checkpoints and checkpoints[-1].seq == scenario.ledger.head()[0]  # type: ignore[index]
    public = scenario.key.public_key()
    assert all(keys.verify(public, cp.signature, cp.message()) for cp in checkpoints)
    assert checkpoints[-1].key_id == keys.key_id(public)
    (tmp_path / "elsewhere").mkdir()
    stranger = keys.load_or_create(tmp_path / "elsewhere")
    problems = scenario.ledger.verify(stranger.public_key())
    assert problems and all("signature does not verify" in p for p in problems)


def test_key_file_is_private_and_reused(tmp_path: Path) -> None:
    key = keys.load_or_create(tmp_path)
    path = tmp_path / keys.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = keys.load_or_create(tmp_path)
    assert keys.key_id(again.public_key()) == keys.key_id(key.public_key())
    pem = keys.public_pem(key)
    assert pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert keys.key_id(keys.load_public(pem)) == keys.key_id(key.public_key())


def test_collector_is_bounded_and_counts_the_rest(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    collector = WindowCollector(Pseudonymiser(b"k" * 32), window=300, max_clients=3, max_records=2)
    allow = Decision(Action.ALLOW, 0, (), "score")
    for n in range(5):
        for record in range(4):
            collector(s.engine.contexts.build(s.clock.now(), f"192.0.2.{n}", "GET",
                                              f"/api/v1/users/{record + 1}", CHROME), allow)
    entries = collector.drain(None)
    windows = [e for e in entries if e.kind == "window" and e.subject != "*overflow*"]
    overflow = [e for e in entries if e.subject == "*overflow*"]
    assert len(windows) == 3 and overflow[0].body["requests"] == 8
    assert all(len(e.body["records_taken"]) == 2 and e.body["records_not_listed"] == 2 for e in windows)
    totals = [e for e in entries if e.kind == "totals"][0]
    assert totals.body["requests"] == 20


def test_the_collectors_bodies_are_plain_and_encoded_once(tmp_path: Path) -> None:
    """Window entries are marked plain, so the ledger encodes them once (``NewEntry.plain``):
    their canonical text must load back to an equal body that encodes to the same text, or a
    verifier (which encodes the loaded body) would find every such entry changed."""
    from legal_scenario import CHROME

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    collector = WindowCollector(Pseudonymiser(b"k" * 32), window=300)
    odd = [(k, v) for k, v in CHROME if k != "user-agent"]
    odd.append(("user-agent", 'Mözilla/5.0 "quoted" \\ \u2028'))
    for n, action in enumerate([*Action, Action.ALLOW, Action.ALLOW]):
        path = f"/u/ünïcode.{n}\"" if n % 2 else f"/api/v1/users/{n + 1}"
        ctx = s.engine.contexts.build(s.clock.now() + n * 0.37, f"192.0.2.{n % 3}", "GET", path,
                                      odd if n % 3 else CHROME)
        collector(ctx, Decision(action, n * 7.25, ("rule.x (+1): ü",), f"rule-{n % 4}"))
    entries = collector.drain(None)
    assert {e.kind for e in entries} == {"totals", "window"} and all(e.plain for e in entries)
    for entry in entries:
        text = canonical(entry.body)
        assert json.loads(text) == entry.body and canonical(json.loads(text)) == text
    ledger = Ledger(s.db)
    written = ledger.append(entries, 1_700_000_000.0)
    assert [e.body for e in written] == [e.body for e in entries]
    assert ledger.verify() == []
    # Not plain (the default): a body with int keys is normalised before it is hashed.
    ledger.append([NewEntry("audit", "s", {"counts": {10: "b", 2: "a"}, "pair": (1, 2)})], 1_700_000_001.0)
    assert ledger.entries(kind="audit")[-1].body == {"counts": {"10": "b", "2": "a"}, "pair": [1, 2]}
    assert ledger.verify() == []


def test_decoys_degraded_and_refused_answers_are_not_taken(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    collector = WindowCollector(Pseudonymiser(b"k" * 32), window=300)
    for n, action in enumerate(Action):
        ctx = s.engine.contexts.build(s.clock.now(), "192.0.2.1", "GET", f"/api/v1/users/{n + 1}", CHROME)
        collector(ctx, Decision(action, 0, (), "test"))
    [window] = [e for e in collector.drain(None) if e.kind == "window"]
    assert window.body["records_taken"] == ["user:1"]  # Action.ALLOW is the first
    assert window.body["records_touched"] == len(Action)


def _hammer(url: str, writers: int, batches: int, tmp: Path) -> Ledger:
    """Several nodes (own Database objects) and threads append at once."""
    dbs = [Database(url) for _ in range(writers)]
    errors: list[BaseException] = []

    def write(db: Database, n: int) -> None:
        try:
            ledger = Ledger(db)
            for b in range(batches):
                ledger.append([NewEntry("window", f"node{n}", {"batch": b, "i": i}) for i in range(3)],
                              1_700_000_000.0 + b)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(db, n)) for n, db in enumerate(dbs * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    for db in dbs[1:]:
        db.close()
    return Ledger(dbs[0])


def test_concurrent_writers_never_fork_the_chain_sqlite(tmp_path: Path) -> None:
    ledger = _hammer(f"sqlite:///{tmp_path / 'shared.sqlite'}", 3, 15, tmp_path)
    assert ledger.count() == 3 * 2 * 15 * 3
    assert ledger.verify() == []
    ledger.db.close()


def test_concurrent_writers_never_fork_the_chain_postgres(pg_server: PostgresServer,  # noqa: F811
                                                          tmp_path: Path) -> None:
    url = pg_server.create_database("ledger")
    ledger = _hammer(url, 3, 15, tmp_path)
    assert ledger.count() == 3 * 2 * 15 * 3
    assert ledger.verify() == []
    entries = ledger.entries()
    assert [e.seq for e in entries] == list(range(1, len(entries) + 1))
    ledger.db.close()


def test_the_shield_feeds_its_ledger_and_signs_at_shutdown(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    clock = ManualClock(1_793_700_000.0)
    shield = Shield(Settings.resolve(str(tmp_path)), clock)
    try:
        for user_id in range(1, 30):
            clock.advance(1)
            shield.engine.decide(shield.engine.contexts.build(clock.now(), "192.0.2.9", "GET",
                                                               f"/api/v1/users/{user_id}", CHROME))
    finally:
        shield.close()
    db = Database(f"sqlite:///{tmp_path / 'scrapeshield.db'}")
    ledger = Ledger(db)
    key = keys.load_or_create(tmp_path)
    assert stat.S_IMODE(os.stat(tmp_path / keys.KEY_FILE).st_mode) == 0o600
    windows = ledger.entries(kind="window")
    assert sum(e.body["requests"] for e in windows) == 29
    assert windows[0].subject.startswith("p:")  # pseudonymised with the shield's own key
    assert ledger.checkpoints() and ledger.verify(key.public_key()) == []
    assert json.loads(json.dumps(windows[0].body)) == windows[0].body
    db.close()


def test_checkpoints_follow_the_period_and_only_a_moved_head(scenario: Scenario) -> None:
    before = len(scenario.ledger.checkpoints())
    scenario.db.audit(scenario.clock.now(), "bob", "list.remove", {"kind": "ip", "value": "p:x"})
    scenario.clock.advance(60)
    scenario.feeder.run()  # the head moved, but within the 10 minutes: no new signature yet
    assert len(scenario.ledger.checkpoints()) == before
    scenario.clock.advance(600)
    scenario.feeder.run()
    assert len(scenario.ledger.checkpoints()) == before + 1
    scenario.clock.advance(600)
    scenario.feeder.run()  # nothing new to sign
    assert len(scenario.ledger.checkpoints()) == before + 1


def test_on_postgres_two_nodes_feed_at_once_and_the_pack_verifies(
        pg_server: PostgresServer, tmp_path: Path) -> None:  # noqa: F811
    from scrapeshield.legal.evidence import export_pack, verify_pack

    url = pg_server.create_database("legal")
    s = Scenario(Database(url), tmp_path)
    s.run()
    for n in range(40):
        s.db.audit(s.clock.now(), f"analyst{n % 3}", "list.add", {"kind": "ip", "value": f"p:{n}"})
    nodes = [LedgerFeeder(Ledger(Database(url)), None, s.key, s.clock) for _ in range(3)]
    threads = [threading.Thread(target=node.run) for node in nodes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    audits = [e.body["audit_id"] for e in s.ledger.entries(kind="audit")]
    assert sorted(audits) == sorted(set(audits)) and len(audits) == 41
    assert s.ledger.verify(s.key.public_key()) == []
    export_pack(s.db, CAMPAIGN, tmp_path / "pack.zip", s.key, policy=s.policy, clock=s.clock)
    assert verify_pack(tmp_path / "pack.zip", s.key.public_key()).ok
    for node in nodes:
        node.ledger.db.close()
    s.db.close()


def test_windows_wait_while_the_database_is_down(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    for user_id in range(1, 6):
        s.clock.advance(1)
        s.get("192.0.2.77", f"/api/v1/users/{user_id}", CHROME)
    s.clock.advance(600)
    down = LedgerFeeder(Ledger(Database(f"sqlite:///{tmp_path / 'missing' / 'db.sqlite'}",
                                        migrate_schema=False)), s.collector, s.key, s.clock)
    with pytest.raises(OperationalError, match="unable to open database file"):
        down.run()
    assert down.pending  # nothing lost: the drained windows wait
    down.ledger = s.ledger  # the database is back
    down.run()
    assert not down.pending
    assert sum(e.body["requests"] for e in s.ledger.entries(kind="totals")) == 5


def test_the_ledger_follows_a_reloaded_pseudonymisation_setting(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    from scrapeshield.policy.loader import default_policy_text

    policy = tmp_path / "policy.yaml"
    policy.write_text(default_policy_text())
    clock = ManualClock(1_793_700_000.0)
    shield = Shield(Settings.resolve(str(tmp_path), policy_path=str(policy)), clock)
    try:
        def visit() -> None:
            shield.engine.decide(shield.engine.contexts.build(clock.now(), "192.0.2.9", "GET",
                                                               "/api/v1/users/5", CHROME))
        visit()
        clock.advance(400)
        shield.ledger_feeder.run()
        policy.write_text(default_policy_text().replace("pseudonymise_ips: true", "pseudonymise_ips: false"))
        assert shield.reload() == []
        visit()
    finally:
        shield.close()
    db = Database(f"sqlite:///{tmp_path / 'scrapeshield.db'}")
    subjects = [e.subject for e in Ledger(db).entries(kind="window")]
    db.close()
    assert subjects[0].startswith("p:") and subjects[1] == "192.0.2.9"


def test_an_undrained_collector_stays_bounded(tmp_path: Path) -> None:
    from legal_scenario import CHROME

    from scrapeshield.legal.collector import MAX_WINDOWS

    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    collector = WindowCollector(Pseudonymiser(b"k" * 32), window=300)
    allow = Decision(Action.ALLOW, 0, (), "score")
    for n in range(MAX_WINDOWS + 10):
        collector(s.engine.contexts.build(s.clock.now() + n * 300, "192.0.2.1", "GET", "/", CHROME), allow)
    assert collector.dropped_windows == 10
    assert len([e for e in collector.drain(None) if e.kind == "totals"]) == MAX_WINDOWS


def test_workers_starting_together_share_one_key(tmp_path: Path) -> None:
    found: list[str] = []

    def start() -> None:
        found.append(keys.key_id(keys.load_or_create(tmp_path).public_key()))

    threads = [threading.Thread(target=start) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(found) == 16 and len(set(found)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == [keys.KEY_FILE]
