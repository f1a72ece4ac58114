"""Campaign grouping on hand-built events, storage on SQLite and PostgreSQL, and acting on
a campaign through list entries that the engine then applies."""

from __future__ import annotations

import itertools
import json
import random
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture

from scrapeshield.campaigns.act import CampaignActionError, act_on_campaign
from scrapeshield.campaigns.grouping import CampaignGrouper, campaign_id, save
from scrapeshield.campaigns.store import (
    campaign_events,
    campaign_members,
    get_campaign,
    list_campaigns,
    purge_members,
)
from scrapeshield.clock import ManualClock
from scrapeshield.db.store import Database
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import load_policy
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action

T0 = 1_750_000_000.0
_counter = itertools.count()


def ev(ts: float, client: str, record: str = "", **more: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "ts": ts, "client": client, "network": "p:net-" + client[-3:], "fingerprint": "fp-chrome",
        "user_agent": "Mozilla/5.0 Chrome/131", "account": "", "method": "GET",
        "path": f"/api/v1/users/{record.split(':')[-1]}" if record else "/", "route":
        "profile-api" if record else "home", "record": record, "action": "allow", "score": 0.0,
        "rule": "score", "reasons": "[]",
    }
    row.update(more)
    return row


def distributed_scraper(rng: random.Random, hops: int = 1500) -> list[dict[str, Any]]:
    """Thousands of residential IPs, 1-5 requests each, one fingerprint, ids in order."""
    events, next_id, ts = [], 1, T0
    for hop in range(hops):
        client = f"p:hop{hop:05d}"
        for _ in range(rng.randint(1, 5)):
            ts += rng.uniform(0.5, 2.0)
            events.append(ev(ts, client, f"user:{next_id}", fingerprint="fp-curl-cffi-chrome124"))
            next_id += 1
    return events


def people(rng: random.Random, n: int = 600) -> list[dict[str, Any]]:
    """People on their own IPs, sharing the common Chrome fingerprint, reading popular
    profiles (Zipf) and friends: many read only a few."""
    events = []
    for person in range(n):
        ts = T0 + rng.uniform(0, 80_000)
        client = f"p:person{person:04d}"
        events.append(ev(ts, client))
        for _ in range(rng.choice([1, 2, 3, 5, 8, 13, 25])):
            ts += rng.expovariate(1 / 20)
            uid = min(int(rng.paretovariate(1.1)), 9000)
            events.append(ev(ts, client, f"user:{uid}"))
    return events


def nat(rng: random.Random) -> list[dict[str, Any]]:
    """Three hundred people behind one carrier-grade NAT address, each their own browser."""
    events = []
    for person in range(300):
        ts = T0 + rng.uniform(0, 80_000)
        fp = f"fp-person-{person % 40}"
        for _ in range(rng.randint(1, 12)):
            ts += rng.expovariate(1 / 30)
            events.append(ev(ts, "p:cgnat", f"user:{rng.randint(1, 9000)}", fingerprint=fp))
    return events


def grouped(*streams: list[dict[str, Any]]) -> CampaignGrouper:
    grouper = CampaignGrouper()
    for event in sorted(itertools.chain(*streams), key=lambda e: e["ts"]):
        grouper.observe(event)
    return grouper


def test_distributed_scraper_is_one_campaign_and_people_are_not() -> None:
    rng = random.Random(3)
    grouper = grouped(distributed_scraper(rng), people(rng), nat(rng))
    campaigns = grouper.campaigns()
    top = campaigns[0]
    assert (top.kind, top.key) == ("fingerprint", "fp-curl-cffi-chrome124")
    assert top.clients == 1500 and top.records >= 1500 * 2
    assert top.score >= 30, top.reasons
    assert any("thin hops" in r for r in top.reasons)
    assert top.id == campaign_id("fingerprint", "fp-curl-cffi-chrome124") and top.id.startswith("cmp-")
    chrome = next(c for c in campaigns if c.key == "fp-chrome")
    assert chrome.score < 20, chrome.reasons  # the crowd of people is not a scraping campaign
    flagged = [c for c in campaigns if c.score >= 20]
    assert all(m.client != "p:cgnat" for c in flagged for m in c.members)
    # A person whose few clicks happened to be evenly spaced may share a pace; never a
    # fingerprint, subnet or target list with the scraper, and never more than a few.
    assert all(not m.client.startswith("p:person") for c in flagged if c.kind != "pacing"
               for m in c.members)
    people_in_pacing = sum(m.client.startswith("p:person") for c in flagged for m in c.members)
    assert people_in_pacing <= 6


def test_refusals_and_engine_scores_raise_a_campaign_score() -> None:
    quiet = grouped([ev(T0 + i, f"p:c{i % 5}", f"user:{i}", fingerprint="fp-x") for i in range(50)])
    loud = grouped([
        ev(T0 + i, f"p:c{i % 5}", f"user:{i}", fingerprint="fp-x", action="challenge", score=60.0,
           reasons=json.dumps(["automation user-agent"]))
        for i in range(50)
    ])
    q, lo = quiet.campaigns()[0], loud.campaigns()[0]
    assert lo.score > q.score + 30
    assert any("automation user-agent" in r for r in lo.reasons)


def test_shared_target_list_groups_clients_with_different_looks() -> None:
    targets = [f"user:{i}" for i in range(100, 140)]
    events = [
        ev(T0 + n * 100 + j, f"p:t{n}", rec, fingerprint=f"fp-{n}", network=f"p:n{n}")
        for n in range(6) for j, rec in enumerate(targets)
    ]
    kinds = {c.kind for c in grouped(events).campaigns()}
    assert "targets" in kinds and "pacing" in kinds and "fingerprint" not in kinds


def test_clients_idle_longer_than_the_window_are_forgotten() -> None:
    grouper = grouped([ev(T0 + i, f"p:c{i}", f"user:{i}") for i in range(10)])
    assert grouper.forget_before(T0 + 5) == 5 and len(grouper.clients) == 5


@pytest.fixture(params=("sqlite", "postgresql"))
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / f'c{next(_counter)}.db'}"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database()
    database = Database(url)
    yield database
    database.close()


def test_save_is_idempotent_and_the_read_api_answers(db: Database) -> None:
    rng = random.Random(5)
    scraper = distributed_scraper(rng, hops=60)
    db.write_events([{**e, "uid": f"e{i}"} for i, e in enumerate(scraper)])
    grouper = grouped(scraper)
    campaigns = [c for c in grouper.campaigns() if c.score >= 20]
    assert save(db, campaigns, now=T0 + 1e4) == len(campaigns) >= 1
    save(db, campaigns, now=T0 + 1e4)  # again: same rows
    stored = list_campaigns(db)
    assert len(stored) == len(campaigns)
    cid = campaign_id("fingerprint", "fp-curl-cffi-chrome124")
    one = get_campaign(db, cid)
    assert one is not None and one["clients"] == 60 and one["status"] == "active"
    assert isinstance(one["reasons"], list) and one["reasons"]
    members = campaign_members(db, cid)
    assert len(members) == 60 and {m["client"] for m in members} == {e["client"] for e in scraper}
    events = campaign_events(db, cid, limit=10)
    assert len(events) == 10 and events[0]["ts"] >= events[-1]["ts"]
    assert get_campaign(db, "cmp-nope") is None and campaign_events(db, "cmp-nope", 5) == []
    assert list_campaigns(db, since=T0 + 1e9) == []


def test_members_past_retention_go_unless_a_case_holds_them(db: Database) -> None:
    from scrapeshield.console.cases import Cases

    rng = random.Random(7)
    first = distributed_scraper(rng, hops=20)
    second = [{**e, "client": e["client"].replace("hop", "other"), "fingerprint": "fp-second"}
              for e in distributed_scraper(rng, hops=20)]
    campaigns = [c for c in grouped(first, second).campaigns() if c.kind == "fingerprint"]
    assert save(db, campaigns, now=T0 + 1e4) == 2
    one, two = campaign_id("fingerprint", "fp-curl-cffi-chrome124"), campaign_id("fingerprint", "fp-second")
    cases = Cases(db.engine)
    cases.link(cases.open("one hop", "analyst", T0), "client", "p:hop00007")
    cases.open("the second fleet", "analyst", T0, links=(("campaign", two),))
    latest = max(e["ts"] for e in first + second)
    assert purge_members(db, before=T0) == 0  # nobody last seen that long ago
    assert purge_members(db, before=latest + 1) == 19
    assert [m["client"] for m in campaign_members(db, one)] == ["p:hop00007"]
    assert len(campaign_members(db, two)) == 20
    assert {c["id"] for c in list_campaigns(db)} == {one, two}  # the campaigns themselves stay


def test_acting_on_a_fingerprint_campaign_blocks_its_new_ips_too(db: Database) -> None:
    rng = random.Random(6)
    fp_engine = Engine(load_policy(), MemoryStore(), ManualClock(T0))
    # The scraper's real fingerprint as the engine computes it from the headers it sends.
    headers = [("host", "site"), ("user-agent", "python-requests/2.32.3"), ("accept-encoding", "gzip"),
               ("accept", "*/*"), ("connection", "keep-alive")]
    fp = fp_engine.contexts.build(T0, "203.0.113.9", "GET", "/", headers).fingerprint
    scraper = [{**e, "fingerprint": fp, "account": "77" if i % 10 == 0 else ""}
               for i, e in enumerate(distributed_scraper(rng, hops=40))]
    save(db, grouped(scraper).campaigns(), now=T0)
    cid = campaign_id("fingerprint", fp)
    result = act_on_campaign(db, cid, action="block", ttl=3600, reason="scraping", actor="analyst",
                             now=T0, lists=fp_engine.lists)
    kinds = {e.kind for e in result.entries}
    assert kinds == {"fingerprint", "account"} and result.skipped_pseudonyms == 40
    fresh_ip = fp_engine.decide(fp_engine.contexts.build(T0 + 1, "198.51.100.77", "GET", "/api/v1/users/5",
                                                         headers))
    assert fresh_ip.action is Action.BLOCK and fresh_ip.rule == "list"
    browser = fp_engine.decide(fp_engine.contexts.build(
        T0 + 1, "198.51.100.78", "GET", "/", [("user-agent", "Mozilla/5.0 Firefox/133.0")]))
    assert browser.rule != "list"  # another fingerprint is not on the list
    expired = fp_engine.decide(fp_engine.contexts.build(T0 + 3601, "198.51.100.79", "GET", "/", headers))
    assert expired.rule != "list"
    assert get_campaign(db, cid)["status"] == "contained"  # type: ignore[index]
    assert {e.kind for e in db.live_list_entries(T0)} == {"fingerprint", "account"}
    assert db.audit_trail(1)[0]["action"] == "campaign.act"
    with pytest.raises(CampaignActionError):
        act_on_campaign(db, "cmp-missing", now=T0)
    with pytest.raises(CampaignActionError):
        act_on_campaign(db, cid, action="nuke", now=T0)


def test_with_ips_kept_acting_on_a_subnet_campaign_lists_the_subnet_and_its_ips(db: Database) -> None:
    events = [ev(T0 + i, f"198.51.100.{10 + i % 6}", f"user:{i}", network="198.51.100.0/24",
                 fingerprint=f"fp-{i % 6}", action="challenge", score=70.0) for i in range(60)]
    save(db, grouped(events).campaigns(), now=T0)
    cid = campaign_id("network", "198.51.100.0/24")
    engine = Engine(load_policy(), MemoryStore(), ManualClock(T0))
    result = act_on_campaign(db, cid, action="block", ttl=600, reason="subnet", now=T0, lists=engine.lists)
    assert {(e.kind, e.value) for e in result.entries} >= {("network", "198.51.100.0/24"),
                                                           ("ip", "198.51.100.10")}
    assert result.skipped_pseudonyms == 0
    other = engine.decide(engine.contexts.build(T0 + 1, "198.51.100.200", "GET", "/", []))
    assert other.action is Action.BLOCK and other.rule == "list"


def test_a_verified_crawler_is_not_grouped_with_spoofers_of_its_fingerprint() -> None:
    """Spoofers copy Googlebot's fingerprint; acting on their campaign must not reach Google."""
    verified = json.dumps(["policy rule 'verified-crawlers'",
                           "goodbot.verified (+-40): googlebot verified: ranges and reverse DNS agree"])
    spoofed = json.dumps(["goodbot.spoofed (+50): claims googlebot from an address googlebot does not use"])
    events = [ev(T0 + i, f"p:google{i % 4}", f"user:{i}", fingerprint="fp-googlebot", reasons=verified)
              for i in range(200)]
    events += [ev(T0 + i, f"p:fake{i % 40}", f"user:{i}", fingerprint="fp-googlebot", action="block",
                  score=100.0, reasons=spoofed) for i in range(200)]
    grouper = grouped(events)
    campaign = next(c for c in grouper.campaigns() if c.key == "fp-googlebot")
    assert campaign.clients == 40 and not any(m.client.startswith("p:google") for m in campaign.members)
    assert grouper.ignored == 200
    # The same as a list of reasons (events as the engine hands them over).
    listed = CampaignGrouper()
    listed.observe(ev(T0, "p:google9", "user:1", fingerprint="fp-googlebot", reasons=json.loads(verified)))
    assert listed.ignored == 1 and not listed.clients


def test_a_client_rereading_past_its_kept_sample_counts_each_record_once() -> None:
    """100 distinct records read twice: 100, not 136 (the kept sample holds only 64)."""
    reads = [ev(T0 + i, "p:reader", f"user:{i % 100}") for i in range(200)]
    summary = grouped(reads).clients["p:reader"]
    assert len(summary.records) == 64
    assert summary.records_seen == 100
    assert summary.record_requests == 200


def test_a_summary_adds_one_object_to_the_garbage_collectors_watch() -> None:
    """A long-running service keeps a summary per client: its collections must not be objects
    the cyclic GC tracks (sets, Counters), or every full collection walks six per client."""
    import gc

    reads = [ev(T0 + i, "p:reader", f"user:{i % 100}", account="17", reasons='["ua.curl (+60): curl"]',
                action="challenge") for i in range(200)]
    summary = grouped(reads).clients["p:reader"]
    assert summary.records and summary.accounts and summary.routes and summary.reasons
    assert summary.record_hashes
    gc.collect()  # a dict that once held a tracked value is only untracked by a full pass
    tracked = [name for name in ("records", "accounts", "routes", "reasons", "record_hashes")
               if gc.is_tracked(getattr(summary, name))]
    assert tracked == []
    # The busiest route, and the first seen of equals, as Counter.most_common(1) picked it.
    tie = grouped([ev(T0 + i, "p:tie", f"user:{i}" if i % 2 else "") for i in range(8)])
    assert tie.clients["p:tie"].routes == {"home": 4, "profile-api": 4}
    assert tie.clients["p:tie"].pacing_key().startswith("home|")
