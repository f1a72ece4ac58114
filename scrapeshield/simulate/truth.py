"""Ground truth from ``scrapeshield demo --export-dataset``: was a response a real record?

A response counts as a real profile only when it carries the user's own unique personal
fields (phone and e-mail) exactly as the dataset has them: a decoy's invented fields or
a degraded answer without them do not count.
"""

from __future__ import annotations

import html
import json
import re
from pathlib import Path
from typing import Any

_HANDLE = re.compile(r'<p class="handle">@([^<]+)</p>')
_PHONE = re.compile(r'<dd class="phone">([^<]*)</dd>')
_EMAIL = re.compile(r'<dd class="email"><a href="mailto:([^"]*)"')


class GroundTruth:
    def __init__(self, users: list[dict[str, Any]]) -> None:
        self.by_id = {int(u["id"]): (str(u["phone"]), str(u["email"])) for u in users}
        self.id_of = {str(u["username"]): int(u["id"]) for u in users}
        self.usernames = [str(u["username"]) for u in users]

    @classmethod
    def load(cls, path: str | Path) -> GroundTruth:
        with Path(path).open(encoding="utf-8") as lines:
            return cls([json.loads(line) for line in lines if line.strip()])

    def __len__(self) -> int:
        return len(self.by_id)

    def real_json(self, body: str) -> int | None:
        """The user id when a JSON profile carries that user's real phone and e-mail."""
        try:
            obj = json.loads(body)
        except ValueError:
            return None
        if not isinstance(obj, dict):
            return None
        user = obj.get("user", obj)
        if not isinstance(user, dict) or not isinstance(user.get("id"), int):
            return None
        fields = self.by_id.get(user["id"])
        return user["id"] if fields and fields == (user.get("phone"), user.get("email")) else None

    def real_html(self, page: str) -> int | None:
        """The user id when a profile page shows that user's real phone and e-mail."""
        handle, phone, email = _HANDLE.search(page), _PHONE.search(page), _EMAIL.search(page)
        if not (handle and phone and email):
            return None
        uid = self.id_of.get(html.unescape(handle.group(1)))
        if uid is None:
            return None
        real = (html.unescape(phone.group(1)), html.unescape(email.group(1)))
        return uid if self.by_id[uid] == real else None
