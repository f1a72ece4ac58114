"""What every database accepts: text cut to its column, valid UTF-8, no NUL; URLs with a driver.

A hostile path or user-agent must never make a write fail: PostgreSQL refuses NUL
and over-long VARCHARs, and no driver encodes a lone surrogate.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
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
_TEXT_AT = tuple(EVENT_COLUMNS.index(c) for c in _TEXT_COLUMNS)  # where they are in a tuple
_TEXT_OF_TUPLE = operator.itemgetter(*_TEXT_AT)


def clean_text(value: str, limit: int = 0) -> str:
    """Valid UTF-8 without NUL, at most ``limit`` characters (0: no limit)."""
    if not value.isascii():
        value = value.encode("utf-8", "replace").decode("utf-8")  # lone surrogates become '?'
    if "\x00" in value:
        value = value.replace("\x00", "\ufffd")
    return value[:limit] if limit else value


def clean_row(row: dict[str, Any], limits: dict[str, int]) -> dict[str, Any]:
    return {k: clean_text(v, limits.get(k, 0)) if isinstance(v, str) else v for k, v in row.items()}


def event_tuples(rows: Sequence[dict[str, Any] | tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Event rows as tuples in ``EVENT_COLUMNS`` order, cleaned as ``clean_row`` cleans them.

    A row is a dict of columns, or already a tuple in ``EVENT_COLUMNS`` order (the event
    writer's). A batch of tuples is checked column by column, a few C calls per column for
    the whole batch, and passed on as it is when every text is plain (ASCII within its
    length, no NUL). Otherwise rows are checked one by one: the usual row is not copied, any
    other takes the slow path (a column missing from a dict is NULL).
    """
    if all(type(row) is tuple for row in rows) and _plain_columns(rows):  # type: ignore[arg-type]
        return list(rows)  # type: ignore[arg-type]
    out: list[tuple[Any, ...]] = []
    for row in rows:
        if isinstance(row, tuple):
            out.append(row if _plain(row) else _cleaned(dict(zip(EVENT_COLUMNS, row, strict=True))))
            continue
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


def _plain_columns(rows: Sequence[tuple[Any, ...]]) -> bool:
    """Whether every text of these tuples is plain, checked a column at a time."""
    if set(map(len, rows)) != {len(EVENT_COLUMNS)}:
        return False
    columns = list(zip(*rows, strict=True))
    try:
        for at, limit in zip(_TEXT_AT, _TEXT_LIMITS, strict=True):
            column = columns[at]
            joined = "".join(column)  # TypeError unless every value is text
            if not joined.isascii() or "\x00" in joined or max(map(len, column)) > limit:
                return False
    except TypeError:
        return False
    return True


def _plain(row: tuple[Any, ...]) -> bool:
    """Whether one tuple's texts are plain."""
    try:
        texts = _TEXT_OF_TUPLE(row)
        joined = "".join(texts)
    except TypeError:
        return False
    return joined.isascii() and "\x00" not in joined and all(map(operator.le, map(len, texts), _TEXT_LIMITS))


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
