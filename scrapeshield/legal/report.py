"""The compliance report (C11): each regulator expectation (``expectations`` in the rules file),
the measures in place for it, and their measured effect over a period."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from scrapeshield.db.store import Database
from scrapeshield.legal.document import Document, Section, Table, number, to_html, to_pdf, when
from scrapeshield.legal.errors import LegalError
from scrapeshield.legal.report_facts import measure
from scrapeshield.legal.rules import Rules
from scrapeshield.policy.compiled import CompiledPolicy

Facts = dict[str, Any]


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.1f} h"


# capability → (the measure in place, its measured effect in words)
MEASURES: dict[str, tuple[Callable[[Facts], str], Callable[[Facts], str]]] = {
    "C1": (lambda f: "Enforcement point in front of the site: throttle, proof-of-work challenge, block, "
                     "tarpit, degrade, decoy", lambda f: f"{number(f['requests'])} requests assessed; "
                     f"{number(f['refused_or_altered'])} refused or altered"),
    "C2": (lambda f: f"Rate and data-access limits: {f['policy']['limits']} limits, of which "
                     f"{f['policy']['record_limits']} on distinct personal records",
           lambda f: f"{number(f['records_withheld'])} personal records withheld from flagged clients "
                     "(distinct per client and window; ledger); "
                     f"{number(f['record_requests_protected'])} refused record requests recorded as events"),
    "C3": (lambda f: f"Bot-pattern detection: scored signals, {f['policy']['honeypots']} honeypot traps, "
                     "verified search engines",
           lambda f: f"{number(f['flagged_clients'])} clients flagged"),
    "C4": (lambda f: "Campaign detection: clients grouped by shared fingerprint, network, pace or targets",
           lambda f: f"{number(f['campaigns'])} campaigns ({number(f['campaign_clients'])} clients), "
                     f"{number(f['campaigns_contained'])} contained"),
    "C5": (lambda f: "Monitoring: Prometheus metrics, structured logs, recorded events and alerts",
           lambda f: f"{number(sum(f['events_by_action'].values()))} decisions recorded as events"),
    "C6": (lambda f: "The team's console with roles and an audit trail of every analyst action",
           lambda f: f"{number(sum(f['audit_actions'].values()))} analyst actions by "
                     f"{number(f['audit_actors'])} people; median response {_hours(f['response_median'])}"),
    "C7": (lambda f: "Hash-chained evidence ledger with signed checkpoints; signed evidence packs",
           lambda f: f"{number(f['ledger_entries'])} ledger entries, {number(f['ledger_checkpoints'])} "
                     f"signed checkpoints; {number(f['evidence_exports'])} evidence packs exported"),
    "C8": (lambda f: "Breach assessment per jurisdiction from rules data, with draft notices",
           lambda f: f"{number(len(f['incidents']))} incidents assessed"),
    "C9": (lambda f: "Forensic replay of access logs through the same engine",
           lambda f: "available on demand (scrapeshield replay)"),
    "C10": (lambda f: "User privacy controls enforced by the shield (stricter budgets, degrade)",
            lambda f: f"{number(f['actions'].get('degrade', 0))} responses degraded"),
    "C11": (lambda f: "This report, from stored measurements", lambda f: f"period of {f['days']:.0f} days"),
    "embedded default": (lambda f: "Runs embedded in one process on SQLite; no vendor needed",
                         lambda f: "in use" if f["requests"] else "available"),
}


def _policy_summary(policy: CompiledPolicy | None) -> dict[str, int]:
    if policy is None:
        from scrapeshield.policy.loader import load_policy

        policy = load_policy(None)
    src = policy.source
    return {"limits": len(src.limits), "record_limits": sum(lim.distinct_records for lim in src.limits),
            "honeypots": len(src.honeypots), "rules": len(src.rules)}


def build_report(db: Database, start: float, end: float, *, rules: Rules | None = None,
                 policy: CompiledPolicy | None = None) -> Facts:
    if end <= start:
        raise LegalError("the end of the period must be after its start")
    rules = rules or Rules.load()
    facts = measure(db, start, end)
    facts["days"] = (end - start) / 86400
    facts["policy"] = _policy_summary(policy)
    rows = []
    for item in rules.expectations:
        caps = [str(c) for c in item.get("capabilities", [])]
        known = [c for c in caps if c in MEASURES]
        rows.append({
            "id": item.get("id", ""), "expectation": item.get("expectation", ""),
            "capabilities": caps,
            "measures": "; ".join(MEASURES[c][0](facts) for c in known) or "not covered by scrapeshield",
            "effect": "; ".join(MEASURES[c][1](facts) for c in known) or "-",
            "sources": list(item.get("sources", [])), "note": item.get("note", ""),
        })
    facts["expectations"] = rows
    facts["rules_path"] = rules.display
    return facts


def report_document(f: Facts) -> Document:
    doc = Document(
        title="Compliance report: data scraping",
        subtitle=f"Period {when(f['start'])} to {when(f['end'])}. Measures against the expectations of "
                 "the data-protection authorities' joint statements on data scraping (2023, 2024).",
        figures=[("Requests assessed", number(f["requests"])),
                 ("Refused or altered", number(f["refused_or_altered"])),
                 ("Scraping campaigns detected", number(f["campaigns"])),
                 ("Scraping campaigns contained", number(f["campaigns_contained"])),
                 ("Personal records withheld from scrapers", number(f["records_withheld"])),
                 ("Incidents assessed", number(len(f["incidents"]))),
                 ("Median team response", _hours(f["response_median"]))],
        footer=f"Expectations and sources: {f['rules_path']}. Figures from the shield's ledger, events, "
               "campaigns and audit trail.",
    )
    doc.sections.append(Section("Expectations, measures and their effect", tables=[Table(
        ["Expectation", "Measures in place", "Measured effect"],
        [[f"{r['id']}: {r['expectation']}", r["measures"], r["effect"]] for r in f["expectations"]])]))
    doc.sections.append(Section("Decisions over the period", tables=[Table(
        ["Decision", "Requests"], [[k, number(v)] for k, v in f["actions"].items()])]))
    doc.sections.append(Section("Scraping campaigns", tables=[Table(
        ["Campaign", "Kind", "Clients", "Requests", "Records", "Status", "Team response"],
        [[f"{c['id']} {c['label']}", c["kind"], number(c["clients"]), number(c["requests"]),
          number(c["records"]), f"{c['status']} {c['action'] or ''}".strip(),
          _hours(f["response_times"].get(c["id"]))] for c in f["campaign_list"]])]))
    doc.sections.append(Section("Incidents and their assessments", tables=[Table(
        ["Incident", "Source", "Subjects", "Notifications required", "Next deadline"],
        [[i["id"], i["source"], number(i["subjects"]), ", ".join(i["required"]) or "none",
          when(i["next_deadline"]) or "-"] for i in f["incidents"]])]))
    doc.sections.append(Section("Team response (audit trail)", [
        "Response time: from a campaign's first request to the team's first recorded action naming "
        f"it or one of its clients. Median {_hours(f['response_median'])}, longest "
        f"{_hours(f['response_max'])}."], tables=[Table(
            ["Action", "Count"], [[k, number(v)] for k, v in f["audit_actions"].items()])]))
    doc.sections.append(Section("Sources", [f"{r['id']}: " + "; ".join(r["sources"]) +
                                            (f" ({r['note']})" if r["note"] else "")
                                            for r in f["expectations"]]))
    return doc


def write_report(facts: Facts, out: Path) -> list[Path]:
    base = out.with_suffix("") if out.suffix in (".html", ".pdf") else out
    doc = report_document(facts)
    paths = [base.with_name(base.name + ".html"), base.with_name(base.name + ".pdf")]
    try:
        base.parent.mkdir(parents=True, exist_ok=True)
        paths[0].write_text(to_html(doc), encoding="utf-8")
        paths[1].write_bytes(to_pdf(doc))
    except OSError as exc:
        raise LegalError(f"cannot write {base}: {exc.strerror or exc}") from exc
    return paths
