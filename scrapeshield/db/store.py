"""Open a database from a URL and do the few reads and writes the shield needs."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, create_engine, delete, event, func, insert, select, update
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry

from scrapeshield.db.models import AuditRow, Base, EventRow, ListEntryRow
from scrapeshield.lists import ListEntry
from scrapeshield.types import Action


def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")  # readers (admin API) never block the writer
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


class Database:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = create_engine(url, future=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        Base.metadata.create_all(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    # -- events -------------------------------------------------------------------

    def write_events(self, rows: Sequence[dict[str, Any]]) -> None:
        if rows:
            with self.engine.begin() as conn:
                conn.execute(insert(EventRow), list(rows))

    def purge_events(self, before: float) -> int:
        with self.engine.begin() as conn:
            return conn.execute(delete(EventRow).where(EventRow.ts < before)).rowcount

    def recent_events(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        query = select(EventRow).order_by(EventRow.id.desc()).limit(limit)
        if action:
            query = query.where(EventRow.action == action)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [_event_dict(dict(r)) for r in rows]

    def top_clients(self, since: float, limit: int = 20) -> list[dict[str, Any]]:
        query = (
            select(
                EventRow.client,
                func.max(EventRow.score).label("max_score"),
                func.count().label("events"),
                func.max(EventRow.ts).label("last_seen"),
            )
            .where(EventRow.ts >= since)
            .group_by(EventRow.client)
            .order_by(func.max(EventRow.score).desc(), func.count().desc())
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())

    # -- lists --------------------------------------------------------------------

    def add_list_entry(self, entry: ListEntry, now: float) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(ListEntryRow)
                .where(ListEntryRow.kind == entry.kind, ListEntryRow.value == entry.value)
                .where(ListEntryRow.removed_at.is_(None))
                .values(removed_at=now)
            )
            conn.execute(
                insert(ListEntryRow).values(
                    kind=entry.kind, value=entry.value, action=entry.action.value,
                    expires=entry.expires, reason=entry.reason, created_by=entry.created_by,
                    created_at=now,
                )
            )

    def remove_list_entry(self, kind: str, value: str, now: float) -> bool:
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ListEntryRow)
                .where(ListEntryRow.kind == kind, ListEntryRow.value == value)
                .where(ListEntryRow.removed_at.is_(None))
                .values(removed_at=now)
            )
            return result.rowcount > 0

    def live_list_entries(self, now: float) -> list[ListEntry]:
        query = select(ListEntryRow).where(ListEntryRow.removed_at.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            ListEntry(r["kind"], r["value"], Action(r["action"]), r["expires"], r["reason"],
                      r["created_by"])
            for r in rows
            if not r["expires"] or r["expires"] > now
        ]

    # -- audit --------------------------------------------------------------------

    def audit(self, ts: float, actor: str, action: str, detail: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                insert(AuditRow).values(ts=ts, actor=actor, action=action, detail=json.dumps(detail))
            )

    def audit_trail(self, limit: int = 200) -> list[dict[str, Any]]:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"ts": r["ts"], "actor": r["actor"], "action": r["action"],
             "detail": json.loads(r["detail"])}
            for r in rows
        ]


def _event_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["reasons"] = json.loads(row["reasons"])
    return row
