"""What every database accepts: text cut to its column, valid UTF-8, no NUL; URLs with a driver.

A hostile path or user-agent must never make a write fail: PostgreSQL refuses NUL
and over-long VARCHARs, and no driver encodes a lone surrogate.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable
from typing import Any

from sqlalchemy import String, Table

from scrapeshield.db.models import AuditRow, EventRow, ListEntryRow


def lengths(table: Any) -> dict[str, int]:
    assert isinstance(table, Table)
    return {c.name: c.type.length for c in table.columns if isinstance(c.type, String) and c.type.length}


EVENT_LENGTHS = lengths(EventRow.__table__)
LIST_LENGTHS = lengths(ListEntryRow.__table__)
AUDIT_LENGTHS = lengths(AuditRow.__table__)
# The columns an event row fills, in the order ``event_tuples`` gives them (all but ``id``),
# and those of them that hold text, with their lengths (0: unbounded).
EVENT_COLUMNS: tuple[str, ...] = tuple(
    c.name for c in EventRow.__table__.columns if c.name != "id")
_TEXT_COLUMNS = tuple(c for c in EVENT_COLUMNS if isinstance(
    EventRow.__table__.columns[c].type, String))
_EVENT_LIMITS = tuple(EVENT_LENGTHS.get(c, 0) for c in EVENT_COLUMNS)
_TEXT_LIMITS = tuple(EVENT_LENGTHS.get(c, 0) or 1 << 62 for c in _TEXT_COLUMNS)
_ALL = operator.itemgetter(*EVENT_COLUMNS)
_TEXT = operator.itemgetter(*_TEXT_COLUMNS)
_UID = _TEXT_COLUMNS.index("uid")


def clean_text(value: str, limit: int = 0) -> str:
    """Valid UTF-8 without NUL, at most ``limit`` characters (0: no limit)."""
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become '?'
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def clean_row(row: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    return {k: clean_text(v, limits.get(k, 0)) if isinstance(v, str) else v for k, v in row.items()}


def event_tuples(rows: Iterable[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Event rows as tuples in ``EVENT_COLUMNS`` order, cleaned as ``clean_row`` cleans them.

    The usual row (every column there, ASCII text within its length, no NUL) is checked in a
    few C calls and not copied; any other takes the slow path (a missing column is NULL).
    """
    out: list[tuple[Any, ...]] = []
    for row in rows:
        try:
            values = _ALL(row)
            texts = _TEXT(row)
            if texts[_UID] is None:  # rows of older versions have no uid
                texts = texts[:_UID] + ("",) + texts[_UID + 1:]
            joined = "".join(texts)  # TypeError unless every text column holds text
        except (KeyError, TypeError):
            out.append(_cleaned(row))
            continue
        if joined.isascii() and "\x00" not in joined and all(map(operator.le, map(len, texts), _TEXT_LIMITS)):
            out.append(values)
        else:
            out.append(_cleaned(row))
    return out


def _cleaned(row: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        clean_text(v, limit) if isinstance(v, str) else v
        for v, limit in zip(map(row.get, EVENT_COLUMNS), _EVENT_LIMITS, strict=True))


def normalise_url(url: str) -> str:
    """``postgres://`` and ``postgresql://`` mean the psycopg 3 driver that scrapeshield ships with."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url
