"""Server-side sessions with a per-session CSRF token.

The cookie carries a random token; the table keeps only its SHA-256, the user name, the CSRF
token and the expiry (absolute ``TTL``, and ``IDLE`` without a request). Signing out, a
disabled user or a new password ends the session on the next request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, delete, insert, select, update

from scrapeshield.console.roles import Role
from scrapeshield.db.models import ConsoleSessionRow, ConsoleUserRow

COOKIE = "ss_console"
TTL = 12 * 3600.0
IDLE = 3600.0
TOUCH_EVERY = 60.0  # write last_seen at most this often


@dataclass(frozen=True, slots=True)
class Session:
    username: str
    role: Role
    csrf: str
    via: str = "session"  # "session" (cookie) or "token" (the admin API's bearer token)

    def csrf_ok(self, given: str) -> bool:
        return self.via == "token" or (bool(given) and hmac.compare_digest(given, self.csrf))


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class Sessions:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def create(self, username: str, now: float) -> str:
        token = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.expires_at < now))
            conn.execute(insert(ConsoleSessionRow).values(
                id=_key(token), username=username, csrf=secrets.token_urlsafe(32),
                created_at=now, expires_at=now + TTL, last_seen=now))
        return token

    def load(self, token: str, now: float) -> Session | None:
        if not token or len(token) > 100:
            return None
        key = _key(token)
        query = (select(ConsoleSessionRow.csrf, ConsoleSessionRow.expires_at,
                        ConsoleSessionRow.last_seen, ConsoleUserRow.username, ConsoleUserRow.role,
                        ConsoleUserRow.disabled)
                 .join(ConsoleUserRow, ConsoleUserRow.username == ConsoleSessionRow.username)
                 .where(ConsoleSessionRow.id == key))
        with self.engine.connect() as conn:
            row = conn.execute(query).mappings().first()
        if row is None or row["disabled"] or row["expires_at"] <= now or now - row["last_seen"] > IDLE:
            return None
        if now - row["last_seen"] > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(ConsoleSessionRow).where(ConsoleSessionRow.id == key)
                             .values(last_seen=now))
        return Session(row["username"], Role(row["role"]), row["csrf"])

    def end(self, token: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.id == _key(token)))

    def end_all(self, username: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(delete(ConsoleSessionRow).where(ConsoleSessionRow.username == username))
