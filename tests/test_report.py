"""The compliance report and the PDFs of every legal report: rendered to PNG, read back by OCR,
and checked to carry their key figures; the report's figures match the traffic that was run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from legal_scenario import CAMPAIGN, HUMAN, START, Scenario, ocr_pdf

from scrapeshield.db.store import Database
from scrapeshield.legal.assessment_report import write_assessment
from scrapeshield.legal.breach import DataMap, assess
from scrapeshield.legal.evidence import export_pack
from scrapeshield.legal.incident import incident_from_campaign
from scrapeshield.legal.incidents import save_incident
from scrapeshield.legal.report import build_report, write_report
from scrapeshield.legal.rules import Rules
from scrapeshield.legal.subjects import Subjects
from scrapeshield.types import Action

DAY = 86400.0


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> Scenario:
    tmp = tmp_path_factory.mktemp("report")
    s = Scenario(Database(f"sqlite:///{tmp / 'db.sqlite'}"), tmp)
    s.run()
    # The recorded events, as the event writer would store them (every non-allow decision).
    s.db.write_events([
        {"ts": ctx.ts, "client": s.pseudonymise(ctx.ip), "network": s.pseudonymise(ctx.network),
         "method": "GET", "path": ctx.path, "route": ctx.route, "record": ctx.record,
         "user_agent": ctx.user_agent, "account": "", "fingerprint": ctx.fingerprint,
         "action": d.action.value, "score": d.score, "rule": d.rule, "reasons": "[]"}
        for ctx, d in s.decisions if d.action is not Action.ALLOW])
    subjects = Subjects()
    for n in range(1, 2001):
        subjects.add(str(n), "GB")
    result = assess(incident_from_campaign(s.db, CAMPAIGN), subjects, Rules.load(), s.clock.now(),
                    data_map=DataMap.from_policy(s.policy))
    save_incident(s.db, result, "dpo", s.clock.now())
    return s


def normal(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def test_report_figures_match_the_traffic(scenario: Scenario) -> None:
    facts = build_report(scenario.db, START - DAY, START + DAY, policy=scenario.policy)
    decisions = scenario.decisions
    assert facts["requests"] == len(decisions)
    refused = [(ctx, d) for ctx, d in decisions if d.action is not Action.ALLOW]
    assert facts["refused_or_altered"] == len(refused)
    assert facts["records_protected"] == len({ctx.record for ctx, _ in refused if ctx.record})
    # Withheld: per client and 5-minute window, distinct records asked for but not served, for
    # clients that met anything but allow in that window.
    touched: dict[tuple[str, float], set[str]] = {}
    served: dict[tuple[str, float], set[str]] = {}
    flagged: set[tuple[str, float]] = set()
    for ctx, d in decisions:
        key = (ctx.ip, ctx.ts // 300)
        if ctx.record:
            touched.setdefault(key, set()).add(ctx.record)
            if d.action is Action.ALLOW:
                served.setdefault(key, set()).add(ctx.record)
        if d.action is not Action.ALLOW:
            flagged.add(key)
    assert facts["records_withheld"] == sum(
        len(touched.get(k, set())) - len(served.get(k, set())) for k in flagged) > 0
    assert facts["campaigns"] == 1 and facts["campaigns_contained"] == 1
    assert facts["flagged_clients"] == len({ctx.ip for ctx, _ in refused})
    # The analyst acted 60 s after the last scraper request; the campaign began at START.
    assert facts["response_times"][CAMPAIGN] == pytest.approx(scenario.clock.now() - 600 - START)
    assert len(facts["incidents"]) == 1 and facts["incidents"][0]["required"] == ["uk/authority"]
    ids = [row["id"] for row in facts["expectations"]]
    assert ids == [e["id"] for e in Rules.load().expectations] and "JS23-08" in ids
    legal_action = next(r for r in facts["expectations"] if r["id"] == "JS23-08")
    assert f"{facts['ledger_entries']} ledger entries" in legal_action["effect"]
    empty = build_report(scenario.db, START + 10 * DAY, START + 11 * DAY, policy=scenario.policy)
    assert empty["requests"] == 0 and empty["campaigns"] == 0 and empty["incidents"] == []
    assert HUMAN not in str(facts)


def test_compliance_report_pdf_shows_its_key_figures(scenario: Scenario, tmp_path: Path) -> None:
    facts = build_report(scenario.db, START - DAY, START + DAY, policy=scenario.policy)
    html, pdf = write_report(facts, tmp_path / "compliance")
    assert html.name == "compliance.html" and pdf.name == "compliance.pdf"
    text = normal(ocr_pdf(pdf.read_bytes(), tmp_path))
    assert f"Requests assessed {facts['requests']:,}" in text, text
    assert f"Refused or altered {facts['refused_or_altered']:,}" in text, text
    assert "Scraping campaigns detected 1" in text and "Scraping campaigns contained 1" in text, text
    assert "Compliance report" in text
    assert f"{facts['requests']:,}" in html.read_text()


def test_evidence_report_pdf_shows_its_key_figures(scenario: Scenario, tmp_path: Path) -> None:
    import json
    import zipfile

    export_pack(scenario.db, CAMPAIGN, tmp_path / "pack.zip", scenario.key, policy=scenario.policy,
                clock=scenario.clock)
    with zipfile.ZipFile(tmp_path / "pack.zip") as archive:
        pdf, facts = archive.read("report.pdf"), json.loads(archive.read("facts.json"))
    text = normal(ocr_pdf(pdf, tmp_path))
    assert CAMPAIGN in text, text
    assert f"Requests {facts['totals']['requests']:,}" in text, text
    assert f"Real records served {facts['totals']['records_taken']:,}" in text, text


def test_assessment_pdf_shows_its_key_figures(scenario: Scenario, tmp_path: Path) -> None:
    subjects = Subjects()
    for n in range(1, 2001):
        subjects.add(str(n), "DE" if n % 2 else "CA")
    result = assess(incident_from_campaign(scenario.db, CAMPAIGN), subjects, Rules.load(),
                    START + DAY, data_map=DataMap.from_policy(scenario.policy))
    paths = write_assessment(result, tmp_path / "out")
    assert {p.name for p in paths} >= {"assessment.pdf", "assessment.html", "eu-authority.txt"}
    text = normal(ocr_pdf((tmp_path / "out" / "assessment.pdf").read_bytes(), tmp_path))
    assert f"Data subjects affected {result.subjects:,}" in text, text
    assert "Next deadline 2026-11-07 10:00 UTC" in text, text  # aware (11-04 10:00) + 72 h, EU authority


def test_command_line_report(scenario: Scenario, tmp_path: Path) -> None:
    out = tmp_path / "period.pdf"
    done = subprocess.run([sys.executable, "-m", "scrapeshield", "report", "--from", "2026-11-01",
                           "--to", "2026-11-03", "--out", str(out), "--data-dir", str(scenario.data_dir),
                           "--db", scenario.db.url], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "period.pdf").read_bytes().startswith(b"%PDF")
    assert f"{len(scenario.decisions):,}" in (tmp_path / "period.html").read_text()
    bad = subprocess.run([sys.executable, "-m", "scrapeshield", "report", "--from", "2026-11-03",
                          "--to", "2026-11-01", "--out", str(out), "--data-dir", str(scenario.data_dir)],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "--to must be after --from" in bad.stderr
