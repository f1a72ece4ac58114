"""Open a database from a URL and do the few reads and writes the shield needs.

SQLite (embedded default) and PostgreSQL (``postgresql+psycopg://``; a bare
``postgresql://`` or ``postgres://`` means psycopg too) pass the same contract,
``scrapeshield.testing.db``. Opening migrates the schema to the newest revision.
Text is cleaned on the way in (``db.clean``), so a hostile path or user-agent never
makes a write fail; an event the database still refuses (a constraint) is logged and
counted in ``rejected``, and does not hold back the others of its batch.
"""

from __future__ import annotations

import itertools
import json
import logging
import sqlite3
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, bindparam, create_engine, delete, event, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DataError, IntegrityError
from sqlalchemy.pool import ConnectionPoolEntry

from scrapeshield.db import migrate
from scrapeshield.db.clean import (
    AUDIT_LENGTHS,
    EVENT_COLUMNS,
    LIST_LENGTHS,
    clean_row,
    clean_text,
    event_tuples,
    normalise_url,
)
from scrapeshield.db.models import AuditRow, EventRow, ListEntryRow
from scrapeshield.lists import ListEntry
from scrapeshield.types import Action

log = logging.getLogger("scrapeshield.db")

# Events per INSERT statement: 15 parameters each, far under SQLite's 32,766 and PostgreSQL's
# 65,535 parameters a statement.
VALUES_ROWS = 200

def _sqlite_pragmas(dbapi_conn: DBAPIConnection, _: ConnectionPoolEntry) -> None:
    cursor = dbapi_conn.cursor()
    cursor.execute("PRAGMA busy_timeout=5000")
    # WAL: readers (admin API) never block the writer. It sticks to the file; switching a new
    # file over fails at once, without the busy handler, while another opener holds it.
    for attempt in range(100):
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == 99:
                raise
            time.sleep(0.05)
    cursor.execute("PRAGMA synchronous=NORMAL")
    # The event writer inserts into four indexes, the one by client at random places: with
    # SQLite's default 2 MB page cache nearly every row reads its index pages back from the OS
    # (a syscall each), and a commit of 2,000 rows passed the default 1,000-page WAL and
    # checkpointed every time. Measured with 60,000 rows written into 120,000: 31 -> 21 us of
    # CPU a row (two thirds of it in the kernel before). Up to 16 MiB of cache per connection.
    cursor.execute("PRAGMA cache_size=-16384")
    cursor.execute("PRAGMA wal_autocheckpoint=4000")
    cursor.close()


class Database:
    def __init__(self, url: str, *, connect_timeout: int = 5, migrate_schema: bool = True) -> None:
        self.url = normalise_url(url)
        options: dict[str, Any] = {}
        if make_url(self.url).get_backend_name() != "sqlite":
            options["pool_pre_ping"] = True  # a restarted server leaves dead pooled connections
            if make_url(self.url).get_backend_name() == "postgresql":
                options["connect_args"] = {"connect_timeout": connect_timeout}
        self.engine: Engine = create_engine(self.url, **options)
        self.rejected = 0  # events the database refused (logged one by one)
        self._event_sql: tuple[str, str | None, bool] | None = None  # compiled at the first write
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        if migrate_schema:
            try:
                migrate.upgrade(self.engine)
            except BaseException:
                self.engine.dispose()
                raise

    def close(self) -> None:
        self.engine.dispose()

    # -- events -------------------------------------------------------------------

    def write_events(self, rows: Sequence[dict[str, Any] | tuple[Any, ...]]) -> None:
        """Insert events; one whose ``uid`` is already stored (a redelivery) is skipped.

        A row is a dict of columns or a tuple in ``EVENT_COLUMNS`` order (the event writer's).

        The rows become tuples in the columns' order (cleaned only where needed) and go in
        as multi-row INSERTs of ``VALUES_ROWS`` rows each, compiled once: a few microseconds
        of Python per row, and the driver releases the GIL once per statement rather than
        once per row (a thread waiting to take the GIL back from a busy request path waits
        up to the 5 ms switch interval each time).
        """
        if not rows:
            return
        clean = event_tuples(rows)
        if self._event_sql is None:
            self._event_sql = self._compile_event_insert()
        sql, many, dedupe_here = self._event_sql
        if dedupe_here:
            clean = self._unseen(clean)
        try:
            with self.engine.begin() as conn:
                if many is None:
                    conn.exec_driver_sql(sql, clean)
                else:
                    for start in range(0, len(clean), VALUES_ROWS):
                        chunk = clean[start : start + VALUES_ROWS]
                        statement = many if len(chunk) == VALUES_ROWS else _values_sql(sql, len(chunk))
                        conn.exec_driver_sql(statement, tuple(itertools.chain.from_iterable(chunk)))
        except (DataError, IntegrityError):  # one bad row: write the others one by one
            for row in clean:
                try:
                    with self.engine.begin() as conn:
                        conn.exec_driver_sql(sql, row)
                except (DataError, IntegrityError) as exc:
                    self.rejected += 1
                    log.error("event refused by the database, not stored: %r (%s)",
                              dict(zip(EVENT_COLUMNS, row, strict=True)), exc.orig)

    def _compile_event_insert(self) -> tuple[str, str | None, bool]:
        """The dialect's INSERT of one event (positional parameters in ``EVENT_COLUMNS`` order),
        of ``VALUES_ROWS`` events where the dialect takes multi-row VALUES (else None), and
        whether redeliveries must be weeded out here (no ON CONFLICT in the dialect)."""
        dialect = self.engine.dialect
        values: dict[str, Any] = {c: bindparam(c) for c in EVENT_COLUMNS}
        statement: Any
        if dialect.name == "postgresql":
            statement = postgresql.insert(EventRow).values(values).on_conflict_do_nothing(
                index_elements=["uid"])
        elif dialect.name == "sqlite":
            statement = sqlite.insert(EventRow).values(values).on_conflict_do_nothing(index_elements=["uid"])
        else:
            statement = insert(EventRow).values(values)
        compiled = statement.compile(dialect=dialect)
        sql = str(compiled)
        if compiled.positional:
            if tuple(compiled.positiontup or ()) != EVENT_COLUMNS:
                raise RuntimeError(f"unexpected parameter order for events: {compiled.positiontup}")
        else:  # named parameters (psycopg: %(name)s): the same order, as positional %s
            for column in EVENT_COLUMNS:
                sql = sql.replace(f"%({column})s", "%s")
        known = dialect.name in ("postgresql", "sqlite")
        return sql, _values_sql(sql, VALUES_ROWS) if known else None, not known

    def _unseen(self, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        """Dedupe for dialects without ON CONFLICT (best effort: a racing writer hits the index)."""
        uids = [r[0] for r in rows if r[0]]
        with self.engine.connect() as conn:
            seen = set(conn.execute(select(EventRow.uid).where(EventRow.uid.in_(uids))).scalars())
        fresh: list[tuple[Any, ...]] = []
        for row in rows:
            uid = row[0]
            if not uid or uid not in seen:
                seen.add(uid)
                fresh.append(row)
        return fresh

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
            .order_by(func.max(EventRow.score).desc(), func.count().desc(), EventRow.client)
            .limit(limit)
        )
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings().all()]

    def count_events(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(EventRow)).scalar_one())

    # -- lists --------------------------------------------------------------------

    def add_list_entry(self, entry: ListEntry, now: float) -> None:
        row = clean_row(
            {"kind": entry.kind, "value": entry.value, "action": entry.action.value,
             "expires": entry.expires, "reason": entry.reason, "created_by": entry.created_by,
             "created_at": now},
            LIST_LENGTHS,
        )
        with self.engine.begin() as conn:
            conn.execute(
                update(ListEntryRow)
                .where(ListEntryRow.kind == row["kind"], ListEntryRow.value == row["value"])
                .where(ListEntryRow.removed_at.is_(None))
                .values(removed_at=now)
            )
            conn.execute(insert(ListEntryRow).values(**row))

    def remove_list_entry(self, kind: str, value: str, now: float) -> bool:
        kind = clean_text(kind, LIST_LENGTHS["kind"])
        value = clean_text(value, LIST_LENGTHS["value"])
        with self.engine.begin() as conn:
            result = conn.execute(
                update(ListEntryRow)
                .where(ListEntryRow.kind == kind, ListEntryRow.value == value)
                .where(ListEntryRow.removed_at.is_(None))
                .values(removed_at=now)
            )
            return result.rowcount > 0

    def live_list_entries(self, now: float) -> list[ListEntry]:
        query = select(ListEntryRow).where(ListEntryRow.removed_at.is_(None)).order_by(ListEntryRow.id)
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
        row = clean_row(
            {"ts": ts, "actor": actor, "action": action, "detail": json.dumps(detail)}, AUDIT_LENGTHS
        )
        with self.engine.begin() as conn:
            conn.execute(insert(AuditRow).values(**row))

    def audit_trail(self, limit: int = 200) -> list[dict[str, Any]]:
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)  # newest first
        with self.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            {"ts": r["ts"], "actor": r["actor"], "action": r["action"],
             "detail": json.loads(r["detail"])}
            for r in rows
        ]


def _values_sql(single: str, rows: int) -> str:
    """A one-row ``INSERT ... VALUES (...) tail`` made into one of ``rows`` rows."""
    head, values, rest = single.partition(" VALUES ")
    group = rest[: rest.index(")") + 1]
    return head + values + ", ".join([group] * rows) + rest[len(group):]


def _event_dict(row: dict[str, Any]) -> dict[str, Any]:
    row["reasons"] = json.loads(row["reasons"])
    return row
