"""Breach assessment: hand-checked outcomes and deadlines for several jurisdictions, a case
below every threshold, one with users of many jurisdictions, and incidents built from the DB.

Awareness in these tests: Monday 2026-11-02 10:00 UTC. Hand-checked deadlines: 72 hours is
Thursday 2026-11-05 10:00; 15 business days (weekends skipped) is Monday 2026-11-23 10:00;
30 days (720 h) is 2026-12-02 10:00; 45 days (1080 h) is 2026-12-17 10:00.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from legal_scenario import CAMPAIGN, Scenario

from scrapeshield.db.store import Database
from scrapeshield.legal.breach import DataMap, Incident, assess
from scrapeshield.legal.incident import incident_from_campaign, incident_from_range
from scrapeshield.legal.incidents import get_incident, list_incidents, save_incident
from scrapeshield.legal.rules import Rules, RulesError
from scrapeshield.legal.subjects import Subjects


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


AWARE = at("2026-11-02T10:00")
PROFILE = frozenset({"profile-api"})
MAP = DataMap({
    "profile-api": frozenset({"identity", "profile", "location", "contact"}),
    "handle-only": frozenset({"handle"}),
    "account-dump": frozenset({"identity", "credentials"}),
})
RULES = Rules.load()


def people(spec: dict[str, int]) -> tuple[Subjects, dict[str, frozenset[str]]]:
    """Users numbered from 1 living where ``spec`` says; every one of them taken via the profile API."""
    subjects = Subjects()
    taken: dict[str, frozenset[str]] = {}
    n = 0
    for residence, count in spec.items():
        for _ in range(count):
            n += 1
            subjects.add(str(n), residence, f"user{n}")
            taken[f"user:{n}"] = PROFILE
    return subjects, taken


def run(spec: dict[str, int], routes: frozenset[str] = PROFILE) -> dict[str, Any]:
    subjects, taken = people(spec)
    incident = Incident("inc-test", "test", at("2026-11-01T08:00"), at("2026-11-01T20:00"),
                        {r: routes for r in taken})
    return assess(incident, subjects, RULES, AWARE, data_map=MAP).to_dict()


def outcome(result: dict[str, Any], jid: str) -> dict[str, Any]:
    return next(j for j in result["jurisdictions"] if j["id"] == jid)


def test_eu_contact_data_of_a_few_dozen_people() -> None:
    """GDPR: any risk → authority within 72 h; high risk (contact data, >= 1,000) not reached."""
    result = run({"DE": 25, "FR": 15})
    eu = outcome(result, "eu")
    assert eu["subjects"] == 40 and eu["max_severity"] == 2
    assert eu["authority"]["status"] == "required" and eu["authority"]["test"] == "risk"
    assert eu["authority"]["deadline"] == at("2026-11-05T10:00")
    assert eu["individuals"]["status"] == "not-required" and eu["individuals"]["test"] == "high_risk"
    assert "at least 1,000 people" in eu["individuals"]["reasoning"]
    assert result["next_deadline"] == at("2026-11-05T10:00")
    assert [(n["jurisdiction"], n["audience"]) for n in result["notices"]] == [("eu", "authority")]
    assert "Approximately 40 data subjects" in result["notices"][0]["text"]
    assert eu["sources"] == ["https://eur-lex.europa.eu/eli/reg/2016/679/oj"]


def test_eu_at_scale_individuals_too_without_a_fixed_period() -> None:
    eu = outcome(run({"IE": 1200}), "eu")
    assert eu["individuals"]["status"] == "required"
    assert eu["individuals"]["deadline"] is None
    assert "without undue delay" in eu["individuals"]["deadline_text"]


def test_below_every_threshold() -> None:
    """Only public handles taken (severity 0): no test anywhere is met, nothing to notify."""
    result = run({"GB": 500, "DE": 500, "CA": 500, "AU": 500, "CO": 500, "US-CA": 500, "HK": 500},
                 routes=frozenset({"handle-only"}))
    assert result["subjects"] == 3500
    for j in result["jurisdictions"]:
        for audience in ("authority", "individuals"):
            assert j[audience]["status"] == "not-required", (j["id"], audience)
    assert result["next_deadline"] is None and result["notices"] == []


def test_nothing_real_taken_is_no_incident() -> None:
    subjects, _ = people({"GB": 10})
    incident = Incident("inc-0", "decoys only", 0, 1, {})
    result = assess(incident, subjects, RULES, AWARE, data_map=MAP).to_dict()
    assert result["subjects"] == 0 and result["jurisdictions"] == [] and result["next_deadline"] is None


def test_users_of_many_jurisdictions() -> None:
    spec = {"GB": 1200, "CA": 150, "AU": 1000, "NZ": 999, "CO": 3, "MX": 1000, "HK": 100, "IL": 5000,
            "US-CA": 2000, "AR": 50, "MC": 7, "US": 40, "JP": 11}
    result = run(spec)
    assert result["subjects"] == sum(spec.values())
    assert result["not_modelled"] == {"US": 40, "JP": 11}
    expected = {  # (authority, individuals) hand-checked against the rules file
        "uk": ("required", "required"),  # risk; high risk: contact data of 1,200 >= 1,000
        "ca": ("required", "required"),  # RROSH: contact data of 150 >= 100
        "au": ("required", "required"),  # serious harm: 1,000 >= 1,000
        "nz": ("not-required", "not-required"),  # serious harm: 999 < 1,000
        "co": ("required", "not-required"),  # security code violation; no duty to individuals
        "mx": ("not-required", "required"),  # no authority; significant effect at 1,000
        "hk": ("voluntary", "voluntary"),  # real risk of harm at 100, voluntary regime
        "il": ("not-required", "not-required"),  # severe incident needs 100,000; individuals on order
        "us-ca": ("not-required", "not-required"),  # name + phone/e-mail are not listed elements
        "ar": ("not-required", "not-required"),  # no statutory duty
        "mc": ("review", "review"),  # not verified
    }
    got = {j["id"]: (j["authority"]["status"], j["individuals"]["status"]) for j in result["jurisdictions"]}
    assert got == expected
    uk, au, co = outcome(result, "uk"), outcome(result, "au"), outcome(result, "co")
    assert uk["authority"]["deadline"] == at("2026-11-05T10:00")
    assert au["authority"]["deadline"] is None and au["authority"]["assess_by"] == at("2026-12-02T10:00")
    assert co["authority"]["deadline"] == at("2026-11-23T10:00")
    assert outcome(result, "ca")["authority"]["deadline"] is None
    assert result["next_deadline"] == at("2026-11-05T10:00")
    drafts = {(n["jurisdiction"], n["audience"]) for n in result["notices"]}
    assert ("mx", "individuals") in drafts and ("hk", "authority") in drafts
    assert ("il", "authority") not in drafts and ("mc", "authority") not in drafts


def test_new_zealand_target_is_guidance_not_a_deadline() -> None:
    nz = outcome(run({"NZ": 1000}), "nz")
    assert nz["authority"]["status"] == "required"
    assert nz["authority"]["deadline"] is None and nz["authority"]["target"] == at("2026-11-05T10:00")


def test_california_listed_elements_and_the_attorney_general_threshold() -> None:
    big = outcome(run({"US-CA": 600}, routes=frozenset({"account-dump"})), "us-ca")
    assert big["individuals"]["status"] == "required"
    assert big["individuals"]["deadline"] == at("2026-12-02T10:00")  # 30 days
    assert big["authority"]["status"] == "required"
    assert big["authority"]["deadline"] == at("2026-12-17T10:00")  # 30 + 15 days
    small = outcome(run({"US-CA": 400}, routes=frozenset({"account-dump"})), "us-ca")
    assert small["individuals"]["status"] == "required"
    assert small["authority"]["status"] == "not-required"
    assert "below the 501" in small["authority"]["reasoning"]


def test_same_person_by_id_and_by_username_counts_once() -> None:
    subjects = Subjects()
    subjects.add("7", "DE", "anna.k")
    incident = Incident("i", "t", 0, 1, {"user:7": PROFILE, "username:anna.k": frozenset({"profile-api"}),
                                         "user:99999": PROFILE})
    result = assess(incident, subjects, RULES, AWARE, data_map=MAP).to_dict()
    assert result["subjects"] == 1 and result["records_unmatched"] == 1


def test_rules_are_data_an_edited_file_changes_the_outcome(tmp_path: Path) -> None:
    text = Path(RULES.path).read_text().replace(
        "any_of: [{min_severity: 3, min_subjects: 1}, {min_severity: 2, min_subjects: 1000}]\n"
        "    rrosh:", "any_of: [{min_severity: 1, min_subjects: 10}]\n    rrosh:")
    edited = tmp_path / "rules.yaml"
    edited.write_text(text)
    subjects, taken = people({"DE": 40})
    incident = Incident("i", "t", 0, 1, taken)
    before = outcome(assess(incident, subjects, RULES, AWARE, data_map=MAP).to_dict(), "eu")
    after = outcome(assess(incident, subjects, Rules.load(edited), AWARE, data_map=MAP).to_dict(), "eu")
    assert before["individuals"]["status"] == "not-required"
    assert after["individuals"]["status"] == "required"


def test_a_broken_rules_file_names_its_problems(tmp_path: Path) -> None:
    text = Path(RULES.path).read_text().replace("authority: rrosh", "authority: rrsoh")
    bad = tmp_path / "rules.yaml"
    bad.write_text(text)
    with pytest.raises(RulesError, match=r"jurisdictions\[\d+\] \(ca\): trigger.authority 'rrsoh'"):
        Rules.load(bad)
    (tmp_path / "not.yaml").write_text("a: [")
    with pytest.raises(RulesError, match="not valid YAML"):
        Rules.load(tmp_path / "not.yaml")


@pytest.fixture
def scenario(tmp_path: Path) -> Scenario:
    s = Scenario(Database(f"sqlite:///{tmp_path / 'db.sqlite'}"), tmp_path)
    s.run()
    return s


def _demo_subjects(path: Path, count: int) -> Path:
    """A user file like ``demo --export-dataset`` writes, with residences spread over four places."""
    countries = ["GB", "DE", "CA", "JP"]
    with path.open("w") as out:
        for n in range(1, count + 1):
            out.write(json.dumps({"id": n, "username": f"user{n}", "country": countries[n % 4],
                                  "phone": "+44 7400 000000"}) + "\n")
        out.write("{not json\n")
    return path


def test_campaign_incident_counts_only_records_really_served(scenario: Scenario, tmp_path: Path) -> None:
    incident = incident_from_campaign(scenario.db, CAMPAIGN)
    assert set(incident.taken) == scenario.served()
    assert all(routes == {"profile-api"} for routes in incident.taken.values())
    subjects = Subjects.load(_demo_subjects(tmp_path / "users.jsonl", 2000))
    assert subjects.bad_lines == [2001]
    result = assess(incident, subjects, RULES, AWARE, data_map=DataMap.from_policy(scenario.policy))
    served_ids = sorted(int(r.split(":")[1]) for r in scenario.served())
    assert result.subjects == len(served_ids)
    assert result.categories["contact"] == len(served_ids)
    by_country = {c: sum(1 for i in served_ids if ["GB", "DE", "CA", "JP"][i % 4] == c)
                  for c in ("GB", "DE", "CA", "JP")}
    assert result.to_dict()["not_modelled"] == ({"JP": by_country["JP"]} if by_country["JP"] else {})
    assert {j["id"]: j["subjects"] for j in result.jurisdictions} == {
        k: v for k, v in {"uk": by_country["GB"], "eu": by_country["DE"], "ca": by_country["CA"]}.items()
        if v}


def test_range_incident_takes_the_flagged_clients(scenario: Scenario) -> None:
    from legal_scenario import START

    incident = incident_from_range(scenario.db, START - 60, scenario.clock.now())
    assert set(incident.taken) >= scenario.served()
    nothing = incident_from_range(scenario.db, START - 86400, START - 3600)
    assert dict(nothing.taken) == {}


def test_incidents_on_record_with_countdowns(scenario: Scenario) -> None:
    subjects, _ = people({"GB": 3000})
    result = assess(incident_from_campaign(scenario.db, CAMPAIGN), subjects, RULES, AWARE, data_map=MAP)
    iid = save_incident(scenario.db, result, "dpo", AWARE + 3600)
    save_incident(scenario.db, result, "dpo", AWARE + 7200)  # assessed again: replaced
    listed = list_incidents(scenario.db, now=AWARE + 36 * 3600)
    assert [i["id"] for i in listed] == [iid]
    assert listed[0]["next_deadline"] == at("2026-11-05T10:00")
    assert listed[0]["seconds_left"] == 36 * 3600
    deadlines = {(d["jurisdiction"], d["audience"]): d for d in listed[0]["deadlines"]}
    assert deadlines[("uk", "authority")]["seconds_left"] == 36 * 3600
    detail = get_incident(scenario.db, iid, AWARE)
    assert detail is not None and detail["assessment"]["subjects"] == result.subjects
    assert get_incident(scenario.db, "inc-nope", AWARE) is None


def test_command_line_assessment(scenario: Scenario, tmp_path: Path) -> None:
    users = _demo_subjects(tmp_path / "users.jsonl", 2000)
    out = tmp_path / "assessment"
    done = subprocess.run(
        [sys.executable, "-m", "scrapeshield", "breach", "assess", "--campaign", CAMPAIGN, "--subjects",
         str(users), "--aware-at", "2026-11-02T10:00Z", "--out", str(out), "--json",
         "--data-dir", str(scenario.data_dir), "--db", scenario.db.url],
        capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert data["subjects"] == len(scenario.served()) and data["aware_at"] == AWARE
    assert (out / "assessment.pdf").read_bytes().startswith(b"%PDF")
    assert "unreadable lines" in done.stderr
    listed = subprocess.run([sys.executable, "-m", "scrapeshield", "incidents", "--json", "--data-dir",
                             str(scenario.data_dir), "--db", scenario.db.url],
                            capture_output=True, text=True, timeout=120)
    assert json.loads(listed.stdout)[0]["id"] == data["id"]
    bad = subprocess.run([sys.executable, "-m", "scrapeshield", "breach", "assess", "--subjects", str(users),
                          "--data-dir", str(scenario.data_dir), "--db", scenario.db.url],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--campaign ID or both --from and --to" in bad.stderr
