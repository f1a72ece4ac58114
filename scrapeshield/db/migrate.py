"""Bring a database to the newest schema revision with Alembic, from code (no alembic.ini).

``upgrade(engine)`` is what ``Database(url)`` runs on open. A database made by 0.1.0's
``create_all`` (the tables, no ``alembic_version``) is stamped with the baseline
revision, then upgraded like any other. Concurrent openers of a fresh database take
turns: a PostgreSQL advisory lock, or an advisory file lock beside a SQLite file.

Developers add a revision from a checkout::

    python -m scrapeshield.db.migrate revision "what changed" --url sqlite:////tmp/head.db
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import functools
import logging
from collections.abc import Iterator

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, inspect, text

from scrapeshield.errors import ConfigError

log = logging.getLogger("scrapeshield.db")

SCRIPT_LOCATION = "scrapeshield.db:migrations"
BASELINE = "0001"  # the schema 0.1.0's create_all made
BASELINE_TABLES = frozenset({"events", "list_entries", "audit"})
_PG_LOCK = 0x5C5A_5E1D  # pg_advisory_xact_lock key: one migrator per database at a time


def _config(connection: Connection | None = None) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", SCRIPT_LOCATION)
    cfg.attributes["connection"] = connection
    return cfg


@functools.cache
def head() -> str:
    revision = ScriptDirectory.from_config(_config()).get_current_head()
    assert revision is not None, "the package ships no migration"
    return revision


def current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Migrate to ``revision``; a no-op (one small query) when already there."""
    target = head() if revision == "head" else revision
    with engine.connect() as conn:
        if current(conn) == target:
            return
    with _file_lock(engine), engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_LOCK})
        found = current(conn)
        if found == target:
            return  # another process did it while we waited
        cfg = _config(conn)
        if found is None and _stamp_legacy(conn):
            command.stamp(cfg, BASELINE)
            found = BASELINE
        log.info("database schema %s -> %s (%s)", found or "empty", target, engine.url.render_as_string())
        command.upgrade(cfg, target)


def _stamp_legacy(conn: Connection) -> bool:
    """True for a database that 0.1.0's create_all made; an error for one half made."""
    present = set(inspect(conn).get_table_names()) & BASELINE_TABLES
    if not present:
        return False
    if present != BASELINE_TABLES:
        raise ConfigError(
            f"database has tables {sorted(present)} but not {sorted(BASELINE_TABLES - present)}"
            " and no alembic_version: not a scrapeshield database, or a damaged one"
        )
    log.warning("database made before migrations existed: stamping revision %s", BASELINE)
    return True


@contextlib.contextmanager
def _file_lock(engine: Engine) -> Iterator[None]:
    """An flock on ``<file>-migrate.lock`` beside a SQLite file (never on the database file itself)."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:" or "mode=memory" in str(
        engine.url
    ):
        yield
        return
    with open(f"{database}-migrate.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scrapeshield.db.migrate")
    parser.add_argument("command", choices=["upgrade", "current", "revision"])
    parser.add_argument("message", nargs="?", default="")
    parser.add_argument("--url", required=True)
    args = parser.parse_args(argv)
    engine = create_engine(args.url)
    if args.command in ("upgrade", "revision"):
        upgrade(engine)
    with engine.begin() as conn:
        if args.command == "revision":
            number = head()
            rev_id = f"{int(number) + 1:04d}" if number.isdigit() else None
            command.revision(_config(conn), args.message, autogenerate=True, rev_id=rev_id)
        print(current(conn))
    engine.dispose()


if __name__ == "__main__":
    main()
