"""Alembic migrations: a fresh database, one made by 0.1.0's create_all, and one at 0001, all
reach the newest schema with their data; on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture
from sqlalchemy import (
    Column,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    insert,
    inspect,
    text,
)

from scrapeshield.db import migrate
from scrapeshield.db.models import Base
from scrapeshield.db.store import Database
from scrapeshield.errors import ConfigError
from scrapeshield.testing.db import event

_counter = itertools.count()


def legacy_metadata() -> MetaData:
    """The tables exactly as scrapeshield 0.1.0's models made them with create_all."""
    md = MetaData()
    Table(
        "events", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", Float, nullable=False, index=True),
        Column("client", String(64), nullable=False, index=True),
        Column("network", String(64), nullable=False), Column("method", String(16), nullable=False),
        Column("path", String(512), nullable=False), Column("route", String(64), nullable=False),
        Column("record", String(160), nullable=False), Column("user_agent", String(512), nullable=False),
        Column("account", String(128), nullable=False), Column("fingerprint", String(32), nullable=False),
        Column("action", String(16), nullable=False, index=True), Column("score", Float, nullable=False),
        Column("rule", String(96), nullable=False), Column("reasons", Text, nullable=False),
    )
    Table(
        "list_entries", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("kind", String(16), nullable=False), Column("value", String(200), nullable=False),
        Column("action", String(16), nullable=False), Column("expires", Float, nullable=False),
        Column("reason", String(500), nullable=False), Column("created_by", String(64), nullable=False),
        Column("created_at", Float, nullable=False), Column("removed_at", Float, nullable=True),
        Index("ix_list_live", "kind", "value", "removed_at"),
    )
    Table(
        "audit", md,
        Column("id", Integer, primary_key=True, autoincrement=True),
        Column("ts", Float, nullable=False, index=True), Column("actor", String(64), nullable=False),
        Column("action", String(64), nullable=False), Column("detail", Text, nullable=False),
    )
    return md


@pytest.fixture(params=("sqlite", "postgresql"))
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'm-{next(_counter)}.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database


def schema_diff(url: str, metadata: MetaData) -> list[Any]:
    engine = create_engine(url)
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
    engine.dispose()
    return [d for d in diff if not (isinstance(d, tuple) and d[0] == "remove_table"
                                    and d[1].name == "alembic_version")]


def revision(url: str) -> str | None:
    engine = create_engine(url)
    with engine.connect() as conn:
        found = migrate.current(conn)
    engine.dispose()
    return found


def legacy_database(url: str) -> None:
    """What 0.1.0 left behind: create_all's tables, a few rows, no alembic_version."""
    engine = create_engine(url)
    md = legacy_metadata()
    md.create_all(engine)
    old = {k: v for k, v in event(1).items() if k != "uid"}
    with engine.begin() as conn:
        conn.execute(insert(md.tables["events"]), [{**old, "ts": 1.0}, {**old, "ts": 2.0}])
        conn.execute(insert(md.tables["list_entries"]).values(
            kind="ip", value="192.0.2.1", action="block", expires=0.0, reason="r", created_by="ana",
            created_at=1.0))
        conn.execute(insert(md.tables["audit"]).values(ts=1.0, actor="ana", action="list.add", detail="{}"))
    engine.dispose()


def test_fresh_database_gets_exactly_the_models_schema(new_url: Any) -> None:
    url = new_url()
    Database(url).close()
    assert revision(url) == migrate.head() == "0007"
    assert schema_diff(url, Base.metadata) == []


def test_initial_revision_is_the_old_create_all_schema(new_url: Any) -> None:
    url = new_url()
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")
    engine.dispose()
    assert revision(url) == "0001"
    assert schema_diff(url, legacy_metadata()) == []


def test_database_made_by_create_all_is_stamped_and_upgraded_without_loss(new_url: Any) -> None:
    url = new_url()
    legacy_database(url)
    db = Database(url)
    assert revision(url) == migrate.head()
    assert schema_diff(url, Base.metadata) == []
    events = db.recent_events()
    assert [e["ts"] for e in events] == [2.0, 1.0] and all(e["uid"] is None for e in events)
    assert [e.value for e in db.live_list_entries(5.0)] == ["192.0.2.1"]
    assert db.audit_trail()[0]["actor"] == "ana"
    db.write_events([event(7), event(7)])
    assert db.count_events() == 3, "new events get the uid guarantee next to the old rows"
    db.close()


def test_upgrade_from_0001_with_data_and_back(new_url: Any) -> None:
    url = new_url()
    engine = create_engine(url)
    migrate.upgrade(engine, "0001")
    old = {k: v for k, v in event(1).items() if k != "uid"}
    with engine.begin() as conn:
        conn.execute(insert(legacy_metadata().tables["events"]), [old] * 3)
    migrate.upgrade(engine)
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0001")
    assert revision(url) == "0001" and schema_diff(url, legacy_metadata()) == []
    db = Database(url)
    assert db.count_events() == 3 and revision(url) == migrate.head()
    db.close()
    engine.dispose()


def test_half_made_database_is_refused(new_url: Any) -> None:
    url = new_url()
    engine = create_engine(url)
    legacy_metadata().tables["events"].create(engine)
    with pytest.raises(ConfigError, match="not a scrapeshield database"):
        Database(url)
    engine.dispose()


def test_concurrent_first_opens_migrate_once(new_url: Any) -> None:
    url = new_url()
    errors: list[BaseException] = []
    opened: list[Database] = []

    def open_it() -> None:
        try:
            opened.append(Database(url))
        except BaseException as exc:  # reported in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, repr(errors)
    assert revision(url) == migrate.head()
    for db in opened:
        db.close()


def test_an_empty_postgres_schema_is_not_mistaken_for_legacy(pg_server: PostgresServer) -> None:  # noqa: F811
    url = pg_server.create_database()
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE unrelated (x int)"))  # someone else's table is left alone
    Database(url).close()
    assert "unrelated" in inspect(engine).get_table_names() and revision(url) == migrate.head()
    engine.dispose()


def account_index(url: str) -> dict[str, Any]:
    engine = create_engine(url)
    [found] = [i for i in inspect(engine).get_indexes("events") if i["name"] == "ix_events_account"]
    engine.dispose()
    return found


def test_the_account_index_becomes_partial_with_its_rows_kept(new_url: Any) -> None:
    """0007: only events with an account are in ``ix_events_account``; a search by account
    still finds them, through the index, and a downgrade gives the full index back."""
    url = new_url()
    engine = create_engine(url)
    migrate.upgrade(engine, "0006")
    assert "where" not in str(account_index(url).get("dialect_options", {})).lower()
    db = Database(url, migrate_schema=False)
    db.write_events([{**event(1), "account": "ana"}, {**event(2), "account": ""}])
    migrate.upgrade(engine)
    assert revision(url) == "0007"
    options = account_index(url)["dialect_options"]
    where = options.get("sqlite_where", options.get("postgresql_where"))
    assert where is not None and "account" in str(where) and "''" in str(where)
    from scrapeshield.console.queries import search_clients

    assert [r["client"] for r in search_clients(engine, {"account": "ana"})] == [event(1)["client"]]
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            plan = " ".join(str(r) for r in conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT client FROM events WHERE account = 'ana' AND account != ''"))
        assert "ix_events_account" in plan
    with engine.begin() as conn:
        command.downgrade(migrate._config(conn), "0006")
    assert "where" not in str(account_index(url).get("dialect_options", {})).lower()
    assert db.count_events() == 2
    db.close()
    engine.dispose()
