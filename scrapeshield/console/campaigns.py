"""Campaigns as the console reads them: ``scrapeshield.campaigns.store`` (filled by the grouping
job), plus the two look-ups that search needs."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, or_, select

from scrapeshield.campaigns import store
from scrapeshield.db.models import CampaignMemberRow, CampaignRow
from scrapeshield.db.store import Database


def _decode(row: Any) -> dict[str, Any]:
    out = dict(row)
    try:
        out["reasons"] = json.loads(out["reasons"])
    except (ValueError, TypeError):
        out["reasons"] = [str(out["reasons"])]
    return out


def top(db: Database, since: float, limit: int = 10) -> list[dict[str, Any]]:
    return store.list_campaigns(db, since=since, limit=limit)


def recent(db: Database, limit: int = 200, status: str = "") -> list[dict[str, Any]]:
    found = store.list_campaigns(db, since=None, limit=limit if not status else 10_000)
    return [c for c in found if not status or c["status"] == status][:limit]


def get(db: Database, cid: str) -> dict[str, Any] | None:
    return store.get_campaign(db, cid)


def members(db: Database, cid: str, limit: int = 1000) -> list[dict[str, Any]]:
    return store.campaign_members(db, cid, limit=limit)


def events(db: Database, cid: str, limit: int) -> list[dict[str, Any]]:
    return store.campaign_events(db, cid, limit=limit)


def of_clients(engine: Engine, clients: list[str]) -> list[dict[str, Any]]:
    """The campaigns any of ``clients`` belongs to."""
    if not clients:
        return []
    ids = select(CampaignMemberRow.campaign_id).where(CampaignMemberRow.client.in_(clients[:1000]))
    query = select(CampaignRow).where(CampaignRow.id.in_(ids)).order_by(CampaignRow.score.desc()).limit(50)
    with engine.connect() as conn:
        return [_decode(r) for r in conn.execute(query).mappings()]


def find(engine: Engine, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Campaigns whose id, key or label is ``text`` or contains it."""
    pattern = f"%{text}%"
    query = (select(CampaignRow)
             .where(or_(CampaignRow.id == text, CampaignRow.key == text, CampaignRow.label.like(pattern)))
             .order_by(CampaignRow.last_seen.desc()).limit(limit))
    with engine.connect() as conn:
        return [_decode(r) for r in conn.execute(query).mappings()]
