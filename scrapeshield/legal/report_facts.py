"""The measured effect of the platform's measures over a period, from what the shield stored:
ledger (every request, summarised), events (every refused or altered decision), campaigns,
breach assessments on record and the audit trail (the team's response times)."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from scrapeshield.db.models import (
    AuditRow,
    BreachIncidentRow,
    CampaignMemberRow,
    CampaignRow,
    EventRow,
)
from scrapeshield.db.store import Database
from scrapeshield.legal.ledger import Ledger

CONTAINED = ("contained", "closed")


def measure(db: Database, start: float, end: float) -> dict[str, Any]:
    ledger = Ledger(db)
    actions: Counter[str] = Counter()
    flagged: set[str] = set()
    taken_by_flagged = 0
    withheld = 0
    windows = 0
    for entry in ledger.entries(kind="totals", since=start):  # written after their window closed
        if start <= entry.body["window"][0] < end:
            actions.update(entry.body.get("actions", {}))
            windows += 1
    for entry in ledger.entries(kind="window", since=start):
        if start <= entry.body["window"][0] < end and set(entry.body.get("actions", {})) - {"allow"}:
            flagged.add(entry.subject)
            taken = len(entry.body.get("records_taken", []))
            taken_by_flagged += taken
            withheld += max(int(entry.body.get("records_touched", 0)) - taken, 0)
    with db.engine.connect() as conn:
        in_range = (EventRow.ts >= start, EventRow.ts < end)
        protected = conn.execute(select(func.count(), func.count(func.distinct(EventRow.record))).where(
            *in_range, EventRow.action != "allow", EventRow.record != "")).one()
        event_actions = dict(conn.execute(select(EventRow.action, func.count()).where(*in_range)
                                          .group_by(EventRow.action)).all())
        campaigns = [dict(r) for r in conn.execute(select(CampaignRow).where(
            CampaignRow.last_seen >= start, CampaignRow.first_seen < end)).mappings()]
        audit = [dict(r) for r in conn.execute(select(AuditRow).where(
            AuditRow.ts >= start, AuditRow.ts < end + 30 * 86400).order_by(AuditRow.id)).mappings()]
        incidents = [dict(r) for r in conn.execute(select(BreachIncidentRow).where(
            BreachIncidentRow.created_at >= start, BreachIncidentRow.created_at < end)).mappings()]
        members = {c["id"]: list(conn.execute(select(CampaignMemberRow.client).where(
            CampaignMemberRow.campaign_id == c["id"]).limit(2000)).scalars()) for c in campaigns}
    responses = _response_times(campaigns, members, audit)
    in_period_audit = [a for a in audit if a["ts"] < end]
    return {
        "start": start, "end": end, "ledger_windows": windows,
        "requests": sum(actions.values()), "actions": dict(actions.most_common()),
        "events_by_action": event_actions,
        "refused_or_altered": sum(v for k, v in actions.items() if k != "allow"),
        "flagged_clients": len(flagged), "records_taken_by_flagged": taken_by_flagged,
        "record_requests_protected": int(protected[0]), "records_protected": int(protected[1]),
        "records_withheld": withheld,
        "campaigns": len(campaigns),
        "campaigns_contained": sum(c["status"] in CONTAINED or bool(c["action"]) for c in campaigns),
        "campaign_clients": sum(int(c["clients"]) for c in campaigns),
        "campaign_list": [{k: c[k] for k in ("id", "label", "kind", "clients", "requests", "records",
                                             "status", "action", "first_seen")} for c in campaigns],
        "incidents": [_incident(i) for i in incidents],
        "audit_actions": dict(Counter(a["action"] for a in in_period_audit).most_common()),
        "audit_actors": len({a["actor"] for a in in_period_audit}),
        "response_times": responses,
        "response_median": statistics.median(responses.values()) if responses else None,
        "response_max": max(responses.values()) if responses else None,
        "ledger_entries": ledger.count(), "ledger_checkpoints": len(ledger.checkpoints()),
        # "evidence.export": the CLI (export_pack); "export": the console's button
        "evidence_exports": sum(a["action"] in ("evidence.export", "export") for a in in_period_audit),
    }


def _response_times(campaigns: list[dict[str, Any]], members: dict[str, list[str]],
                    audit: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds from a campaign's first request to the team's first action naming it or a member."""
    out: dict[str, float] = {}
    for c in campaigns:
        names = [c["id"], *members.get(c["id"], [])]
        for row in audit:
            if row["ts"] >= c["first_seen"] and any(n in row["detail"] for n in names):
                out[c["id"]] = row["ts"] - c["first_seen"]
                break
    return out


def _incident(row: dict[str, Any]) -> dict[str, Any]:
    data = json.loads(row["assessment"])
    required = [f"{j['id']}/{a}" for j in data["jurisdictions"] for a in ("authority", "individuals")
                if j[a]["status"] == "required"]
    return {"id": row["id"], "source": row["source"], "subjects": row["subjects"],
            "required": required, "next_deadline": row["next_deadline"], "created_at": row["created_at"]}
