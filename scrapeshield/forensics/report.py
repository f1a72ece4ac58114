"""Findings → the replay report: a JSON-ready dict, and the same as text for a person.

Clients appear by pseudonym (the shield's own keyed hash, as in events and evidence
packs); the raw address only when asked for (``show_ips``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import polars as pl

from scrapeshield.forensics.findings import CAMPAIGN_MIN_SCORE, Findings
from scrapeshield.forensics.replay import Replayed

Pseudonymise = Callable[[str], str]
MAX_LISTED = 200  # clients and members listed one by one in a report


def build(
    run: Replayed,
    found: Findings,
    pseudonymise: Pseudonymise,
    *,
    show_ips: bool = False,
    scored_seconds: float | None = None,
) -> dict[str, Any]:
    decided = run.decided
    contained = found.contained()
    clients = []
    for row in contained.head(MAX_LISTED).iter_rows(named=True):
        taken = found.records.get(row["client"], set())
        allowed = found.records_allowed.get(row["client"], set())
        item = {
            "client": pseudonymise(row["client"]),
            "network": pseudonymise(row["network"]),
            "first_seen": row["first_seen"],
            "last_seen": row["last_seen"],
            "contained_at": row["contained_at"],
            "lines": row["lines"],
            "worst_action": row["worst_action"],
            "decided_by": row["rule"],
            "user_agent": row["ua"],
            "records_taken": len(taken),
            "records_taken_under_shield": len(allowed),
            "categories": found.fields_of(taken),
        }
        if show_ips:
            item["ip"] = row["client"]
        clients.append(item)
    campaigns = []
    for c in found.campaigns:
        members = found.member_ips(c)
        taken = found.taken(members)
        entry: dict[str, Any] = {
            "id": c.id,
            "kind": c.kind,
            "label": c.label,
            "score": c.score,
            "reasons": list(c.reasons),
            "clients": c.clients,
            "requests": c.requests,
            "first_seen": c.first_seen,
            "last_seen": c.last_seen,
            "records_taken": len(taken),
            "records_taken_under_shield": len(found.taken(members, allowed_only=True)),
            "categories": found.fields_of(taken),
            "members": [m.client for m in c.members[:MAX_LISTED]],
        }
        if show_ips:
            entry["member_ips"] = members[:MAX_LISTED]
        campaigns.append(entry)
    contained_ips = contained["client"].to_list()
    all_taken = found.taken(contained_ips)
    seconds = scored_seconds if scored_seconds is not None else run.seconds
    return {
        "files": run.files,
        "mode": run.mode,
        "lines": run.lines,
        "good_lines": decided.height,
        "bad_lines": run.bad_lines,
        "blank_lines": run.blank_lines,
        "problems": [{"file": p.file, "line": p.line, "reason": p.reason} for p in run.problems],
        "seconds": round(seconds, 3),
        "lines_per_second": round(run.lines / seconds) if seconds > 0 else None,
        "period": {
            "from": float(decided["ts"].min()) if decided.height else None,  # type: ignore[arg-type]
            "to": float(decided["ts"].max()) if decided.height else None,  # type: ignore[arg-type]
        },
        "signals_off": list(run.signals_off),
        "decisions": found.decisions,
        "clients_seen": found.clients.height,
        "clients_contained": contained.height,
        "contained": clients,
        "campaign_min_score": CAMPAIGN_MIN_SCORE,
        "campaigns": campaigns,
        "incidents": incidents(found, contained, pseudonymise),
        "sizing": {
            "records_taken_by_contained_clients": len(all_taken),
            "records_taken_under_shield": len(found.taken(contained_ips, allowed_only=True)),
            "categories": found.fields_of(all_taken),
        },
    }


def incidents(found: Findings, contained: pl.DataFrame, pseudonymise: Pseudonymise) -> list[dict[str, Any]]:
    """The contained clients, grouped: those of one campaign form one incident, the rest one each.

    Only contained clients count, so a campaign's bystanders (people who share a browser's
    fingerprint with it, say) add nothing to what an incident says was taken.
    """
    rows = {r["client"]: r for r in contained.iter_rows(named=True)}
    left = dict(rows)
    groups: list[tuple[str, str, str, list[str]]] = []
    for c in found.campaigns:
        members = [ip for ip in found.member_ips(c) if ip in left]
        if members:
            groups.append(("campaign", c.id, c.label, members))
            for ip in members:
                del left[ip]
    groups += [("client", pseudonymise(ip), f"client {pseudonymise(ip)}", [ip]) for ip in left]
    out = []
    for kind, ident, label, members in groups:
        taken = found.taken(members)
        out.append(
            {
                "kind": kind,
                "id": ident,
                "label": label,
                "clients": len(members),
                "start": min(rows[m]["first_seen"] for m in members),
                "end": max(rows[m]["last_seen"] for m in members),
                "records_taken": len(taken),
                "records_taken_under_shield": len(found.taken(members, allowed_only=True)),
                "categories": found.fields_of(taken),
            }
        )
    out.sort(key=lambda i: (-i["records_taken"], i["id"]))
    return out


def text(report: dict[str, Any]) -> str:
    out: list[str] = []
    add = out.append
    period = report["period"]
    add(
        f"Replayed {report['lines']:,} lines from {len(report['files'])} file(s) "
        f"({report['mode']} path, {report['seconds']:.1f} s, {report['lines_per_second'] or 0:,} lines/s)"
    )
    add(f"Period: {_when(period['from'])} → {_when(period['to'])}")
    if report["bad_lines"] or report["problems"]:
        add(f"Bad lines: {report['bad_lines']:,} (skipped)")
        for p in report["problems"][:20]:
            where = f"line {p['line']}" if p["line"] else "file"
            add(f"  {p['file']}: {where}: {p['reason']}")
        if len(report["problems"]) > 20:
            add(f"  … {len(report['problems']) - 20} more in --json")
    decisions = ", ".join(f"{k} {v:,}" for k, v in sorted(report["decisions"].items()))
    add(f"Decisions: {decisions}")
    add(f"Clients: {report['clients_seen']:,} seen, {report['clients_contained']:,} contained")
    for c in report["contained"][:30]:
        who = c.get("ip") or c["client"]
        add(
            f"  {who}  {c['worst_action']} ({c['decided_by']}) from {_when(c['contained_at'])}; "
            f"{c['lines']:,} lines, {c['records_taken']:,} records taken "
            f"({c['records_taken_under_shield']:,} under the shield)  {c['user_agent'][:60]}"
        )
    add(f"Campaigns (score ≥ {report['campaign_min_score']:g}): {len(report['campaigns'])}")
    for c in report["campaigns"][:20]:
        add(
            f"  {c['id']}  {c['label'][:70]}  score {c['score']:g}, {c['clients']:,} clients, "
            f"{c['records_taken']:,} records taken, {_when(c['first_seen'])} → {_when(c['last_seen'])}"
        )
    add(f"Incidents (contained clients, grouped by campaign): {len(report['incidents'])}")
    for i in report["incidents"][:20]:
        add(
            f"  {i['kind']} {i['id']}  {i['clients']:,} client(s), {i['records_taken']:,} records taken, "
            f"{_when(i['start'])} → {_when(i['end'])}"
        )
    s = report["sizing"]
    add(
        f"Records taken by contained clients: {s['records_taken_by_contained_clients']:,} "
        f"(under the shield: {s['records_taken_under_shield']:,}); "
        f"fields: {', '.join(s['categories']) or '-'}"
    )
    if report["signals_off"]:
        add(
            "Signals off in this replay (not in logs, or not reproduced in batch): "
            + ", ".join(x.split(" (")[0] for x in report["signals_off"])
        )
    return "\n".join(out)


def _when(ts: float | None) -> str:
    if ts is None:
        return "-"
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S")
