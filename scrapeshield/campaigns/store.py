"""Campaigns in the database: upsert from the grouper, and the read API the console,
the evidence pack and the breach assessment use (plain dicts, JSON-ready).

Works on SQLite and PostgreSQL (``INSERT … ON CONFLICT DO UPDATE`` on both). Saving the
same grouping twice leaves the same rows: the job is idempotent. An analyst's ``status``
and ``action`` on a campaign survive regrouping.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from scrapeshield.db.models import CampaignMemberRow, CampaignRow, CaseLinkRow, EventRow
from scrapeshield.db.store import Database

if TYPE_CHECKING:
    from scrapeshield.campaigns.grouping import Campaign

MEMBER_BATCH = 1000


def _insert(db: Database, table: Any) -> Any:
    if db.engine.dialect.name == "postgresql":
        return postgresql.insert(table)
    if db.engine.dialect.name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"campaign storage supports SQLite and PostgreSQL, not {db.engine.dialect.name}")


def save(db: Database, campaigns: Sequence[Campaign], now: float,
         written: dict[str, dict[str, int]] | None = None) -> int:
    """Upsert campaigns and their members; returns how many campaigns were written.

    ``written``, kept by the caller from one save to the next, maps each campaign id to its
    members' request counts as last written. A member whose count has not moved has nothing
    new (each event it adds counts a request), so it is not written again: a campaign of a
    hundred thousand rotating addresses rewrote every member each minute, most of them long
    gone quiet. Once the write commits, ``written`` holds the current members only (their
    client strings are the grouper's own: a dict slot each).
    """
    if not campaigns:
        return 0
    table = CampaignRow.__table__
    stmt = _insert(db, table)
    ex = stmt.excluded
    upsert = stmt.on_conflict_do_update(
        index_elements=["id"],
        set_={
            "label": ex.label,
            "first_seen": case((table.c.first_seen < ex.first_seen, table.c.first_seen),
                               else_=ex.first_seen),
            "last_seen": case((table.c.last_seen > ex.last_seen, table.c.last_seen), else_=ex.last_seen),
            "clients": ex.clients, "requests": ex.requests, "records": ex.records,
            "score": ex.score, "reasons": ex.reasons, "updated_at": ex.updated_at,
        },
    )
    rows = [
        {**c.as_dict(), "key": c.key[:200], "label": c.label[:200], "reasons": json.dumps(list(c.reasons)),
         "status": "active", "action": "", "updated_at": now}
        for c in campaigns
    ]
    current = {c.id: {m.client: m.requests for m in c.members} for c in campaigns}
    before = written or {}
    members: list[dict[str, Any]] = []
    for c in campaigns:
        last = before.get(c.id, {})
        members += [
            {"campaign_id": c.id, "client": m.client[:64], "first_seen": m.first_seen,
             "last_seen": m.last_seen, "requests": m.requests, "records": m.records_seen,
             "accounts": json.dumps(sorted(m.accounts))}
            for m in c.members if last.get(m.client) != m.requests
        ]
    mtable = CampaignMemberRow.__table__
    mstmt = _insert(db, mtable)
    mex = mstmt.excluded
    mupsert = mstmt.on_conflict_do_update(
        index_elements=["campaign_id", "client"],
        set_={
            "first_seen": case((mtable.c.first_seen < mex.first_seen, mtable.c.first_seen),
                               else_=mex.first_seen),
            "last_seen": case((mtable.c.last_seen > mex.last_seen, mtable.c.last_seen), else_=mex.last_seen),
            "requests": case((mtable.c.requests > mex.requests, mtable.c.requests), else_=mex.requests),
            "records": case((mtable.c.records > mex.records, mtable.c.records), else_=mex.records),
            "accounts": mex.accounts,
        },
    )
    with db.engine.begin() as conn:
        conn.execute(upsert, rows)
        for i in range(0, len(members), MEMBER_BATCH):
            conn.execute(mupsert, members[i : i + MEMBER_BATCH])
    if written is not None:
        written.clear()
        written.update(current)
    return len(rows)


def purge_members(db: Database, before: float) -> int:
    """Delete the membership rows (a client pseudonym and its accounts) last seen before
    ``before``: the events' retention period applies to them too. Members of a campaign a case
    is about, and clients a case names, are kept (a legal hold). Campaign rows stay: counts, a
    trait and reasons. Returns how many rows went."""
    held = select(CaseLinkRow.ref)
    with db.engine.begin() as conn:
        return conn.execute(delete(CampaignMemberRow).where(
            CampaignMemberRow.last_seen < before,
            ~or_(CampaignMemberRow.campaign_id.in_(held.where(CaseLinkRow.kind == "campaign")),
                 CampaignMemberRow.client.in_(held.where(CaseLinkRow.kind == "client"))),
        )).rowcount


def _campaign_dict(row: Any) -> dict[str, Any]:
    out = dict(row)
    out["reasons"] = json.loads(out["reasons"] or "[]")
    return out


def list_campaigns(db: Database, since: float | None = None, limit: int = 100,
                   min_score: float = 0.0) -> list[dict[str, Any]]:
    """Campaigns seen since ``since`` (epoch seconds), strongest first."""
    query = select(CampaignRow).where(CampaignRow.score >= min_score)
    if since is not None:
        query = query.where(CampaignRow.last_seen >= since)
    query = query.order_by(CampaignRow.score.desc(), CampaignRow.records.desc(), CampaignRow.id)
    with db.engine.connect() as conn:
        rows = conn.execute(query.limit(max(1, min(limit, 10_000)))).mappings().all()
    return [_campaign_dict(r) for r in rows]


def get_campaign(db: Database, cid: str) -> dict[str, Any] | None:
    with db.engine.connect() as conn:
        row = conn.execute(select(CampaignRow).where(CampaignRow.id == cid)).mappings().first()
    return _campaign_dict(row) if row is not None else None


def campaign_members(db: Database, cid: str, limit: int = 100_000) -> list[dict[str, Any]]:
    """The campaign's clients (pseudonyms unless IPs are kept), busiest first."""
    query = (
        select(CampaignMemberRow)
        .where(CampaignMemberRow.campaign_id == cid)
        .order_by(CampaignMemberRow.records.desc(), CampaignMemberRow.requests.desc(),
                  CampaignMemberRow.client)
        .limit(limit)
    )
    with db.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        member = dict(r)
        member.pop("id", None)
        member["accounts"] = json.loads(member.get("accounts") or "[]")
        out.append(member)
    return out


def campaign_events(db: Database, cid: str, limit: int = 1000) -> list[dict[str, Any]]:
    """Stored events of the campaign's members within its time span, newest first.

    For a fingerprint or subnet campaign only the events that carry the trait count, so a
    client that also browsed as a person is not charged with that."""
    campaign = get_campaign(db, cid)
    if campaign is None:
        return []
    members = select(CampaignMemberRow.client).where(CampaignMemberRow.campaign_id == cid)
    query = select(EventRow).where(
        EventRow.client.in_(members),
        EventRow.ts >= campaign["first_seen"],
        EventRow.ts <= campaign["last_seen"],
    )
    if campaign["kind"] == "fingerprint":
        query = query.where(EventRow.fingerprint == campaign["key"])
    elif campaign["kind"] == "network":
        query = query.where(EventRow.network == campaign["key"])
    query = query.order_by(EventRow.ts.desc(), EventRow.id.desc()).limit(max(1, min(limit, 100_000)))
    with db.engine.connect() as conn:
        rows = conn.execute(query).mappings().all()
    out = []
    for r in rows:
        event = dict(r)
        event["reasons"] = json.loads(event["reasons"] or "[]")
        out.append(event)
    return out


def set_campaign_action(db: Database, cid: str, action: str, status: str, now: float) -> None:
    with db.engine.begin() as conn:
        conn.execute(
            update(CampaignRow)
            .where(CampaignRow.id == cid)
            .values(action=action, status=status, updated_at=now)
        )
