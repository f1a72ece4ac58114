"""Cases: an investigation with a status, an assignee, notes and linked campaigns or clients.

Status moves freely between ``STATUSES`` (re-opening is normal work); handing a case to
legal stamps ``legal_at`` once. Notes are appended, never edited.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from scrapeshield.db.models import CaseLinkRow, CaseNoteRow, CaseRow

STATUSES = ("open", "investigating", "mitigated", "closed")
LINK_KINDS = ("campaign", "client")


class CaseError(ValueError):
    pass


class Cases:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def open(self, title: str, actor: str, now: float, assignee: str = "",
             links: tuple[tuple[str, str], ...] = ()) -> int:
        title = " ".join(title.split())[:200]
        if not title:
            raise CaseError("a case needs a title")
        with self.engine.begin() as conn:
            cid = conn.execute(insert(CaseRow).values(
                title=title, status="open", assignee=assignee[:64], created_by=actor, created_at=now,
                updated_at=now, legal_at=None)).inserted_primary_key[0]  # type: ignore[index]
        for kind, ref in links:
            self.link(int(cid), kind, ref)
        return int(cid)

    def get(self, case_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(CaseRow).where(CaseRow.id == case_id)).mappings().first()
            if row is None:
                return None
            notes = conn.execute(select(CaseNoteRow).where(CaseNoteRow.case_id == case_id)
                                 .order_by(CaseNoteRow.id)).mappings().all()
            links = conn.execute(select(CaseLinkRow).where(CaseLinkRow.case_id == case_id)
                                 .order_by(CaseLinkRow.id)).mappings().all()
        return {**row, "notes": [dict(n) for n in notes], "links": [dict(link) for link in links]}

    def all(self, status: str = "", legal: bool = False, limit: int = 200) -> list[dict[str, Any]]:
        notes = (select(func.count()).where(CaseNoteRow.case_id == CaseRow.id)
                 .correlate(CaseRow).scalar_subquery().label("notes"))
        query = select(CaseRow, notes).order_by(CaseRow.updated_at.desc()).limit(limit)
        if status:
            query = query.where(CaseRow.status == status)
        if legal:
            query = query.where(CaseRow.legal_at.is_not(None))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def for_refs(self, refs: list[str]) -> list[dict[str, Any]]:
        """Cases linked to any of ``refs`` (campaign ids or client pseudonyms)."""
        if not refs:
            return []
        ids = select(CaseLinkRow.case_id).where(CaseLinkRow.ref.in_(refs[:1000]))
        query = select(CaseRow).where(CaseRow.id.in_(ids)).order_by(CaseRow.updated_at.desc()).limit(50)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def find(self, text: str, limit: int = 50) -> list[dict[str, Any]]:
        query = (select(CaseRow).where(CaseRow.title.like(f"%{text}%"))
                 .order_by(CaseRow.updated_at.desc()).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def change(self, case_id: int, now: float, *, status: str | None = None,
               assignee: str | None = None) -> dict[str, Any]:
        values: dict[str, Any] = {"updated_at": now}
        if status is not None:
            if status not in STATUSES:
                raise CaseError(f"status must be one of {', '.join(STATUSES)}")
            values["status"] = status
        if assignee is not None:
            values["assignee"] = assignee.strip()[:64]
        self._update(case_id, values)
        return values

    def hand_to_legal(self, case_id: int, now: float) -> None:
        self._update(case_id, {"legal_at": now, "updated_at": now})

    def note(self, case_id: int, author: str, text: str, now: float) -> None:
        text = text.strip()[:10_000]
        if not text:
            raise CaseError("an empty note")
        self._update(case_id, {"updated_at": now})
        with self.engine.begin() as conn:
            conn.execute(insert(CaseNoteRow).values(case_id=case_id, ts=now, author=author, text=text))

    def link(self, case_id: int, kind: str, ref: str) -> bool:
        ref = ref.strip()[:64]
        if kind not in LINK_KINDS or not ref:
            raise CaseError(f"a link is a {' or '.join(LINK_KINDS)} and a non-empty reference")
        if self.get(case_id) is None:
            raise CaseError(f"no case {case_id}")
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(CaseLinkRow).values(case_id=case_id, kind=kind, ref=ref))
        except IntegrityError:
            return False  # linked already
        return True

    def _update(self, case_id: int, values: dict[str, Any]) -> None:
        with self.engine.begin() as conn:
            if not conn.execute(update(CaseRow).where(CaseRow.id == case_id).values(**values)).rowcount:
                raise CaseError(f"no case {case_id}")
