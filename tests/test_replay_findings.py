"""Replay findings, computed column-wise, equal what the shield's own code makes line by line.

``find`` builds each client's campaign summary from whole columns; here the same decided
lines are fed one by one, as events, to the grouper (``ClientSummary.add``), and the records
served to each client are collected in Python: summaries, campaigns and record sets must
agree.
"""

from __future__ import annotations

import gc

import polars as pl
import pytest

from scrapeshield.campaigns.grouping import CampaignGrouper
from scrapeshield.events import Pseudonymiser
from scrapeshield.forensics.findings import CAMPAIGN_MIN_SCORE, find
from scrapeshield.forensics.generate import generate
from scrapeshield.forensics.replay import replay
from scrapeshield.policy.loader import load_policy


@pytest.fixture(scope="module")
def decided(tmp_path_factory: pytest.TempPathFactory) -> pl.DataFrame:
    log = tmp_path_factory.mktemp("findings") / "access.log"
    generate(log, people=120, hours=3, scrapers=2, seed=21, users=3000)
    return replay([log], load_policy()).decided


def test_summaries_and_campaigns_equal_the_grouper_fed_line_by_line(decided: pl.DataFrame) -> None:
    pseudonymise = Pseudonymiser(b"findings-test")
    found = find(decided, load_policy(), pseudonymise)
    grouper = CampaignGrouper(min_score=CAMPAIGN_MIN_SCORE)
    distinct: dict[str, set[str]] = {}
    for row in decided.iter_rows(named=True):
        if row["record"]:
            distinct.setdefault(pseudonymise(row["client"]), set()).add(row["record"])
        grouper.observe({
            "ts": row["ts"], "client": pseudonymise(row["client"]), "network": pseudonymise(row["network"]),
            "fingerprint": row["fp"], "user_agent": row["ua"], "route": row["route"],
            "record": row["record"], "action": row["action"], "score": row["score"],
            "reasons": [row["rule"]] if row["action"] != "allow" else [],
        })
    # Both count distinct records (ClientSummary.add exactly up to MAX_DISTINCT_COUNTED).
    for client, records in distinct.items():
        assert grouper.clients[client].records_seen == len(records)
    campaigns = grouper.campaigns()
    built = {s.client: s for c in found.campaigns for s in c.members}
    assert len(found.campaigns) >= 2 and len(built) >= 10
    for client, summary in built.items():
        want = grouper.clients[client]
        for name in ("network", "fingerprint", "user_agent", "first_seen", "last_seen", "requests",
                     "record_requests", "refused", "gaps", "records", "records_seen"):
            assert getattr(summary, name) == getattr(want, name), (client, name)
        # Counts equal, and in the order first seen (the most common route's ties follow it).
        assert list(summary.routes.items()) == list(want.routes.items())
        assert summary.reasons == want.reasons
        for name in ("score_sum", "log_gap_sum", "log_gap_sq"):
            assert getattr(summary, name) == pytest.approx(getattr(want, name), rel=1e-12, abs=1e-9)
    assert [c.as_dict() for c in found.campaigns] == [c.as_dict() for c in campaigns]


def test_records_served_per_client_equal_a_line_by_line_count(decided: pl.DataFrame) -> None:
    found = find(decided, load_policy(), Pseudonymiser(b"findings-test"))
    assert found.records
    served: dict[str, set[str]] = {}
    allowed: dict[str, set[str]] = {}
    routes: dict[str, set[str]] = {}
    for row in decided.iter_rows(named=True):
        if row["client"] not in found.records or not row["record"] or not 200 <= row["status"] < 400:
            continue
        served.setdefault(row["client"], set()).add(row["record"])
        routes.setdefault(row["record"], set()).add(row["route"])
        if row["action"] == "allow":
            allowed.setdefault(row["client"], set()).add(row["record"])
    assert found.records == served
    assert found.records_allowed == allowed
    assert found.routes_of == {r: frozenset(rs) for r, rs in routes.items()}
    contained = set(found.contained()["client"].to_list())
    assert contained <= set(found.records) | set(found.clients["client"].to_list())
    assert sum(found.decisions.values()) == decided.height


def test_the_cycle_collector_is_left_as_it_was(decided: pl.DataFrame) -> None:
    """Findings pause Python's cycle collector while they work, and only while they work."""
    policy, pseudonymise = load_policy(), Pseudonymiser(b"findings-test")
    assert gc.isenabled()
    find(decided, policy, pseudonymise)
    assert gc.isenabled()
    gc.disable()
    try:
        find(decided, policy, pseudonymise)
        assert not gc.isenabled()
    finally:
        gc.enable()
