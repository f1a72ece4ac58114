"""Breach assessments on record, for the console's incident list and deadline countdowns."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import delete, insert, select

from scrapeshield.db.models import BreachIncidentRow
from scrapeshield.db.store import Database
from scrapeshield.legal.breach import Assessment


def save_incident(db: Database, assessment: Assessment, created_by: str, now: float) -> str:
    """Store (or replace: the same incident assessed again) an assessment; returns its id."""
    data = assessment.to_dict()
    row = {
        "id": data["id"][:40], "source": data["source"][:200], "start": data["start"],
        "end": data["end"], "aware_at": data["aware_at"], "created_at": now,
        "created_by": created_by[:64], "subjects": data["subjects"],
        "next_deadline": data["next_deadline"], "assessment": json.dumps(data),
    }
    with db.engine.begin() as conn:
        conn.execute(delete(BreachIncidentRow).where(BreachIncidentRow.id == row["id"]))
        conn.execute(insert(BreachIncidentRow).values(**row))
    return str(row["id"])


def _summary(row: dict[str, Any], now: float) -> dict[str, Any]:
    deadline = row["next_deadline"]
    return {
        "id": row["id"], "source": row["source"], "start": row["start"], "end": row["end"],
        "aware_at": row["aware_at"], "created_at": row["created_at"], "created_by": row["created_by"],
        "subjects": row["subjects"], "next_deadline": deadline,
        "seconds_left": None if deadline is None else deadline - now,
    }


def list_incidents(db: Database, now: float, limit: int = 100) -> list[dict[str, Any]]:
    query = select(BreachIncidentRow).order_by(BreachIncidentRow.created_at.desc()).limit(limit)
    with db.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for row in rows:
        item = _summary(dict(row), now)
        assessment = json.loads(row["assessment"])
        item["deadlines"] = [
            {"jurisdiction": j["id"], "audience": audience, "status": j[audience]["status"],
             "deadline": j[audience]["deadline"], "target": j[audience]["target"],
             "seconds_left": None if j[audience]["deadline"] is None else j[audience]["deadline"] - now}
            for j in assessment["jurisdictions"] for audience in ("authority", "individuals")
            if j[audience]["status"] in ("required", "voluntary")
        ]
        out.append(item)
    return out


def get_incident(db: Database, incident_id: str, now: float) -> dict[str, Any] | None:
    with db.engine.connect() as conn:
        row = conn.execute(select(BreachIncidentRow).where(BreachIncidentRow.id == incident_id)
                           ).mappings().first()
    if row is None:
        return None
    item = _summary(dict(row), now)
    item["assessment"] = json.loads(row["assessment"])
    return item
