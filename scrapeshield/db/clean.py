"""What every database accepts: text cut to its column, valid UTF-8, no NUL; URLs with a driver.

A hostile path or user-agent must never make a write fail: PostgreSQL refuses NUL
and over-long VARCHARs, and no driver encodes a lone surrogate.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import String, Table

from scrapeshield.db.models import AuditRow, EventRow, ListEntryRow


def lengths(table: Any) -> dict[str, int]:
    assert isinstance(table, Table)
    return {c.name: c.type.length for c in table.columns if isinstance(c.type, String) and c.type.length}


EVENT_LENGTHS = lengths(EventRow.__table__)
LIST_LENGTHS = lengths(ListEntryRow.__table__)
AUDIT_LENGTHS = lengths(AuditRow.__table__)


def clean_text(value: str, limit: int = 0) -> str:
    """Valid UTF-8 without NUL, at most ``limit`` characters (0: no limit)."""
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become '?'
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def clean_row(row: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    return {k: clean_text(v, limits.get(k, 0)) if isinstance(v, str) else v for k, v in row.items()}


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean the psycopg 3 driver that scrapeshield ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
