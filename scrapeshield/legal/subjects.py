"""The platform's user data, as far as breach assessment needs it: which person a record key
("user:42", "username:alice") belongs to, and where that person lives. Read from a JSON-lines
file (``scrapeshield demo --export-dataset`` writes one); only three fields are kept in memory."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from scrapeshield.errors import ScrapeshieldError


class SubjectsError(ScrapeshieldError):
    """The user file cannot be read."""


@dataclass(slots=True)
class Subjects:
    residence_field: str = "country"
    by_id: dict[str, str] = field(default_factory=dict)  # subject id → residence ("" unknown)
    by_username: dict[str, str] = field(default_factory=dict)  # username → subject id
    bad_lines: list[int] = field(default_factory=list)

    @classmethod
    def load(cls, path: Path | str, residence_field: str = "country", *, id_field: str = "id",
             username_field: str = "username") -> Subjects:
        subjects = cls(residence_field)
        try:
            with Path(path).open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, start=1):
                    if not line.strip():
                        continue
                    try:
                        user = json.loads(line)
                        sid = str(user[id_field])
                    except (ValueError, KeyError, TypeError):
                        subjects.bad_lines.append(number)  # reported, never fatal
                        continue
                    subjects.add(sid, str(user.get(residence_field) or ""),
                                 str(user.get(username_field) or ""))
        except OSError as exc:
            raise SubjectsError(f"cannot read the user file {path}: {exc.strerror or exc}") from exc
        return subjects

    def add(self, sid: str, residence: str, username: str = "") -> None:
        self.by_id[sid] = residence
        if username:
            self.by_username[username] = sid

    def find(self, record: str) -> tuple[str, str] | None:
        """(subject id, residence) of a record key, or None if no user has it."""
        kind, _, value = record.partition(":")
        if kind == "username":
            sid = self.by_username.get(value)
        else:
            sid = value if value in self.by_id else None
        if sid is None:
            return None
        return sid, self.by_id[sid]
