"""Replay findings into the shield's database: events of the clients that matter, campaigns.

The events of contained clients and campaign members go in (pseudonymised, with a uid
derived from file and line so that storing the same replay twice adds nothing); the
campaigns go through the campaigns store, so the console, the campaign list and the
evidence and breach tools see them like live ones.
"""

from __future__ import annotations

import json

import polars as pl

from scrapeshield.campaigns.store import save as save_campaigns
from scrapeshield.context import short_hash
from scrapeshield.db.store import Database
from scrapeshield.forensics.findings import Findings
from scrapeshield.forensics.replay import Replayed
from scrapeshield.forensics.report import Pseudonymise

BATCH = 5000


def store(db: Database, run: Replayed, found: Findings, pseudonymise: Pseudonymise) -> tuple[int, int]:
    """Write events and campaigns; returns (events written, campaigns written)."""
    wanted = set(found.contained()["client"].to_list())
    for campaign in found.campaigns:
        wanted.update(found.member_ips(campaign))
    lines = run.decided.filter(pl.col("client").is_in(list(wanted)))
    names = run.files
    written = 0
    rows = []
    for r in lines.select(
        "file",
        "line",
        "ts",
        "client",
        "network",
        "method",
        "path",
        "route",
        "record",
        "ua",
        "fp",
        "action",
        "score",
        "rule",
    ).iter_rows(named=True):
        rows.append(
            {
                "uid": "replay-" + short_hash(f"{names[r['file']]}\x1f{r['line']}"),
                "ts": r["ts"],
                "client": pseudonymise(r["client"]),
                "network": pseudonymise(r["network"]),
                "method": r["method"],
                "path": r["path"],
                "route": r["route"],
                "record": r["record"],
                "user_agent": r["ua"],
                "account": "",
                "fingerprint": r["fp"],
                "action": r["action"],
                "score": r["score"],
                "rule": r["rule"],
                "reasons": json.dumps([f"replay of {names[r['file']]}"]),
            }
        )
        if len(rows) >= BATCH:
            db.write_events(rows)
            written += len(rows)
            rows = []
    db.write_events(rows)
    written += len(rows)
    last = max((c.last_seen for c in found.campaigns), default=0.0)
    return written, save_campaigns(db, found.campaigns, last) if found.campaigns else 0
