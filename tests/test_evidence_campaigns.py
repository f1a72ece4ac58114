"""The legal tools on campaigns found by the real grouping job (not written by hand): events
recorded by the shield's event writer, grouped by ``CampaignJob``, then an evidence pack and a
breach assessment of the campaign that holds the rotating scrapers."""

from __future__ import annotations

from pathlib import Path

from legal_scenario import HUMAN, ROTATING, Scenario

from scrapeshield.campaigns.job import CampaignJob
from scrapeshield.campaigns.store import campaign_members, list_campaigns
from scrapeshield.db.store import Database
from scrapeshield.events import EventRecorder
from scrapeshield.legal.breach import DataMap, assess
from scrapeshield.legal.evidence import export_pack, verify_pack
from scrapeshield.legal.incident import incident_from_campaign
from scrapeshield.legal.rules import Rules
from scrapeshield.legal.subjects import Subjects


def test_pack_and_assessment_of_a_grouped_campaign(tmp_path: Path) -> None:
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    recorder = EventRecorder(s.db, s.policy, s.clock, s.pseudonymise)  # as the Shield wires it
    s.engine.listeners.append(recorder)
    for n, ip in enumerate(ROTATING):
        s.scrape(ip, range(1 + n, 301, 60), pace=3.0)
    s.get(HUMAN, "/api/v1/users/7")
    recorder.flush()
    s.clock.advance(600)
    s.feeder.run()
    assert CampaignJob(s.db, s.clock).run() >= 1
    rotating = {s.pseudonymise(ip) for ip in ROTATING}
    found = [c for c in list_campaigns(s.db, limit=50)
             if {m["client"] for m in campaign_members(s.db, c["id"])} >= rotating]
    assert found, [c["label"] for c in list_campaigns(s.db)]
    campaign = found[0]["id"]

    info = export_pack(s.db, campaign, tmp_path / "pack.zip", s.key, policy=s.policy, clock=s.clock)
    assert info["entries"] >= len(ROTATING)
    assert verify_pack(tmp_path / "pack.zip", s.key.public_key()).ok

    incident = incident_from_campaign(s.db, campaign)
    served = s.served(ROTATING)
    assert set(incident.taken) >= served
    subjects = Subjects()
    for n in range(1, 301):
        subjects.add(str(n), "GB")
    result = assess(incident, subjects, Rules.load(), s.clock.now(), data_map=DataMap.from_policy(s.policy))
    assert result.subjects == len({r for r in incident.taken if int(r.split(":")[1]) <= 300})
    [uk] = result.jurisdictions
    assert uk["id"] == "uk" and uk["authority"]["status"] == "required"
