"""The grouping job on a real Shield (SQLite): what the recorder stores, grouping from the
events table, idempotent saves, and `scrapeshield campaigns` acting on the running engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture

from scrapeshield.campaigns import job as campaign_job
from scrapeshield.campaigns.grouping import campaign_id
from scrapeshield.campaigns.store import campaign_members, list_campaigns
from scrapeshield.cli import main
from scrapeshield.clock import ManualClock, SystemClock
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.simulate.clients import browser_mix
from scrapeshield.types import Action

T0 = SystemClock().now()  # the CLI acts at wall time; the shield's clock starts there
SCRAPER = [("host", "site"), ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 "
            "(KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"), ("accept", "*/*"),
           ("accept-language", "en-US,en;q=0.9"), ("accept-encoding", "gzip, deflate, br")]
FIREFOX = next(t for _, t in browser_mix() if t.kind == "firefox")
PERSON = FIREFOX.page("site", referer="http://site/", cookie="", site="same-origin")


@pytest.fixture(params=("sqlite", "postgresql"))
def db_url(request: pytest.FixtureRequest) -> str | None:
    if request.param == "sqlite":
        return None  # SQLite in the data directory
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database()


def scrape(shield: Shield, clock: ManualClock) -> int:
    """A distributed scraper: 60 addresses, 3 profiles each, one look; returns the records read."""
    ask = shield.engine.contexts.build
    for hop in range(60):
        for k in range(3):
            clock.advance(1.0)
            path = f"/api/v1/users/{hop * 3 + k + 1}"
            shield.engine.decide(ask(clock.now(), f"198.51.{hop}.7", "GET", path, SCRAPER))
    return 180


def scraped_campaign(shield: Shield, clock: ManualClock) -> str:
    """``scrape``, its events stored and grouped; returns the fingerprint campaign's id."""
    scrape(shield, clock)
    shield.recorder.flush()
    shield.campaigns.run()
    look = shield.engine.contexts.build(T0, "198.51.0.7", "GET", "/", SCRAPER)
    return campaign_id("fingerprint", look.fingerprint)


def read_profiles(shield: Shield, clock: ManualClock, ip: str, first: int, count: int) -> None:
    for k in range(count):
        clock.advance(1.0)
        shield.engine.decide(shield.engine.contexts.build(
            clock.now(), ip, "GET", f"/api/v1/users/{first + k}", SCRAPER))


def test_the_job_works_in_steps_and_stores_what_one_pass_would(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(campaign_job, "STEP", 50)
    clock = ManualClock(T0)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path)), clock)
    try:
        records = scrape(shield, clock)
        shield.recorder.flush()
        pieces = list(shield.campaigns.steps())
        assert len(pieces) == 5, "180 events in steps of 50, then the grouping"
        assert shield.campaigns.stored >= 1
        look = shield.engine.contexts.build(T0, "198.51.0.7", "GET", "/", SCRAPER)
        cid = campaign_id("fingerprint", look.fingerprint)
        assert {c["id"]: c for c in list_campaigns(shield.db)}[cid]["records"] == records
        assert shield.campaigns.run() == 0  # nothing new since: nothing rewritten
    finally:
        shield.close()


def test_job_groups_stored_events_and_the_cli_acts_on_the_engine(tmp_path: Path, db_url: str | None) -> None:
    clock = ManualClock(T0)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), db_url=db_url), clock)
    where = ["--data-dir", str(tmp_path), *(["--db", db_url] if db_url else [])]
    try:
        ask = shield.engine.contexts.build
        records = scrape(shield, clock)
        refused = quiet = 0
        for _ in range(300):  # page views without records: allows are sampled at 1 %
            clock.advance(2.0)
            d = shield.engine.decide(ask(clock.now(), f"192.0.2.{_ % 50}", "GET", "/", PERSON))
            refused += d.action is not Action.ALLOW
            quiet += d.action is Action.ALLOW
        shield.recorder.flush()
        stored = shield.db.count_events()
        assert quiet >= 100
        assert stored == records + refused + quiet // 100, "every record-touching request and refusal"

        assert shield.campaigns.run() >= 1
        fingerprint = ask(T0, "198.51.0.7", "GET", "/", SCRAPER).fingerprint
        cid = campaign_id("fingerprint", fingerprint)
        first = {c["id"]: c for c in list_campaigns(shield.db)}
        assert first[cid]["clients"] == 60 and first[cid]["records"] == records
        assert len(campaign_members(shield.db, cid)) == 60
        assert shield.campaigns.run() == 0  # nothing new: nothing rewritten
        shield.campaigns.saved = 0
        shield.campaigns.run()  # rewritten from the same state: the same rows
        again = {c["id"]: c for c in list_campaigns(shield.db)}
        assert {k: {**v, "updated_at": 0} for k, v in again.items()} == \
            {k: {**v, "updated_at": 0} for k, v in first.items()}
        assert "scrapeshield.campaigns" not in json.dumps(again)  # plain data

        runner = CliRunner()
        listed = runner.invoke(main, ["campaigns", "list", "--json", *where])
        assert listed.exit_code == 0 and cid in {c["id"] for c in json.loads(listed.output)}
        shown = runner.invoke(main, ["campaigns", "show", cid, *where])
        assert shown.exit_code == 0 and "60 clients" in shown.output
        acted = runner.invoke(main, ["campaigns", "act", cid, "--action", "block", "--ttl", "3600",
                                     "--reason", "distributed scraping", *where])
        assert acted.exit_code == 0, acted.output
        assert "fingerprint" in acted.output and "60 members known only by pseudonym" in acted.output
        missing = runner.invoke(main, ["campaigns", "show", "cmp-nothing", *where])
        assert missing.exit_code == 1

        # The serving shield picks the entry up on its next job run; a new address is refused.
        fresh = ask(clock.now() + 1, "203.0.113.200", "GET", "/api/v1/users/999", SCRAPER)
        assert shield.engine.decide(fresh).rule != "list"
        shield.campaigns.run()
        decision = shield.engine.decide(fresh)
        assert decision.action is Action.BLOCK and decision.rule == "list"
        assert "distributed scraping" in decision.reasons[0]
    finally:
        shield.close()


def test_a_save_writes_only_the_members_with_something_new(tmp_path: Path) -> None:
    """Members whose request count has not moved since the last save are not written again,
    yet every member of a campaign new to the save is, and the stored figures stay current."""
    from sqlalchemy import event

    clock = ManualClock(T0)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path)), clock)
    written: list[int] = []

    def count(conn: object, cursor: object, statement: str, parameters: object, context: object,
              executemany: bool) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO CAMPAIGN_MEMBERS"):
            written.append(len(parameters) if executemany else 1)  # type: ignore[arg-type]

    event.listen(shield.db.engine, "before_cursor_execute", count)
    try:
        cid = scraped_campaign(shield, clock)
        first = sum(written)
        assert first >= 60, "every member of the new campaigns"
        members = {m["client"]: m for m in campaign_members(shield.db, cid)}
        assert len(members) == 60
        # One hop comes back for two more profiles: its rows are the only ones written.
        written.clear()
        read_profiles(shield, clock, "198.51.5.7", 900, 2)
        shield.recorder.flush()
        shield.campaigns.run()
        assert 1 <= sum(written) < 5, written  # the hop, in each campaign it belongs to
        after = {m["client"]: m for m in campaign_members(shield.db, cid)}
        hop = shield.pseudonymise("198.51.5.7")
        assert after[hop]["requests"] == members[hop]["requests"] + 2
        assert {c: m for c, m in after.items() if c != hop} == {c: m for c, m in members.items() if c != hop}
    finally:
        shield.close()


def test_members_past_the_retention_period_are_deleted_unless_a_case_holds_them(tmp_path: Path) -> None:
    """Membership rows carry client pseudonyms and accounts: the events' retention applies, but
    a case about the client keeps them (legal hold; a case about the campaign: test_campaigns)."""
    from scrapeshield.console.cases import Cases

    clock = ManualClock(T0)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path)), clock)
    try:
        cid = scraped_campaign(shield, clock)
        members = {m["client"] for m in campaign_members(shield.db, cid)}
        assert len(members) == 60 and shield.campaigns.purged == 0
        held = shield.pseudonymise("198.51.3.7")
        cases = Cases(shield.db.engine)
        cases.link(cases.open("hop 3", "analyst", clock.now()), "client", held)
        # Within the retention period (30 days by default) nothing goes.
        clock.advance(29 * 86400.0)
        shield.purge_expired()  # the shield's hourly retention job
        assert {m["client"] for m in campaign_members(shield.db, cid)} == members
        # Past it, at the next purge, every member but the held ones.
        clock.advance(2 * 86400.0)
        shield.purge_expired()
        assert [m["client"] for m in campaign_members(shield.db, cid)] == [held]
        assert shield.campaigns.purged >= 59
        assert {c["id"] for c in list_campaigns(shield.db)} >= {cid}  # the campaign itself stays
        # A purged hop that comes back is a member again, written by the next save.
        read_profiles(shield, clock, "198.51.7.7", 2000, 3)
        for hop in range(1, 40):  # with enough others to make a campaign again
            read_profiles(shield, clock, f"198.51.{hop + 100}.7", 3000 + hop, 1)
        shield.recorder.flush()
        shield.campaigns.run()
        assert shield.pseudonymise("198.51.7.7") in {m["client"] for m in campaign_members(shield.db, cid)}
    finally:
        shield.close()
