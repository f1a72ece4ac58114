"""The facts an evidence pack states about a campaign, computed from its ledger slice only
(so every figure in the report can be checked against the signed ``ledger.jsonl``)."""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from typing import Any

from scrapeshield.legal.breach import DataMap
from scrapeshield.legal.ledger import Entry


def campaign_facts(campaign: dict[str, Any], entries: list[Entry], data_map: DataMap,
                   texts: dict[str, tuple[str, str]]) -> dict[str, Any]:
    """``texts``: name → (where it came from, text) for the terms and robots.txt in force."""
    windows: dict[float, dict[str, Any]] = {}
    actions: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    routes: Counter[str] = Counter()
    agents: Counter[str] = Counter()
    fingerprints: Counter[str] = Counter()
    networks: Counter[str] = Counter()
    clients: set[str] = set()
    taken: dict[str, set[str]] = defaultdict(set)
    touched = 0
    audit: list[dict[str, Any]] = []
    states: list[dict[str, Any]] = []
    for entry in entries:
        body = entry.body
        if entry.kind == "audit":
            audit.append({"seq": entry.seq, "at": body.get("at"), "actor": body.get("actor"),
                          "action": body.get("action"), "detail": body.get("detail")})
            continue
        if entry.kind == "campaign":
            states.append({"seq": entry.seq, **{k: body.get(k) for k in (
                "updated_at", "status", "action", "clients", "requests", "records", "score")}})
            continue
        start = float(body["window"][0])
        w = windows.setdefault(start, {"start": start, "end": float(body["window"][1]), "clients": 0,
                                       "requests": 0, "records_touched": 0, "taken": set(),
                                       "actions": Counter()})
        w["clients"] += 1
        w["requests"] += body.get("requests", 0)
        w["records_touched"] += body.get("records_touched", 0)
        w["taken"].update(body.get("records_taken", []))
        w["actions"].update(body.get("actions", {}))
        clients.add(entry.subject)
        actions.update(body.get("actions", {}))
        rules.update(body.get("rules", {}))
        routes.update(body.get("routes", {}))
        agents.update(body.get("user_agents", {}))
        fingerprints.update(body.get("fingerprints", []))
        networks.update(body.get("networks", []))
        touched += body.get("records_touched", 0)
        for record, route in body.get("taken_routes", {}).items():
            taken[record].add(route)
    categories: Counter[str] = Counter()
    for record_routes in taken.values():
        categories.update(data_map.categories(frozenset(record_routes)))
    return {
        "campaign": campaign,
        "timeline": [{**w, "taken": len(w["taken"]), "actions": dict(w["actions"])}
                     for _, w in sorted(windows.items())],
        "totals": {"requests": sum(actions.values()), "clients": len(clients),
                   "records_touched": touched, "records_taken": len(taken),
                   "networks": len(networks), "fingerprints": len(fingerprints)},
        "actions": dict(actions.most_common()), "rules": dict(rules.most_common()),
        "routes": dict(routes.most_common()), "categories": dict(categories.most_common()),
        "user_agents": dict(agents.most_common(25)), "fingerprints": dict(fingerprints.most_common(25)),
        "networks": dict(networks.most_common(50)), "audit": audit, "states": states,
        "texts": {name: {"source": src, "sha256": hashlib.sha256(text.encode()).hexdigest(), "text": text}
                  for name, (src, text) in texts.items()},
    }
