"""Console users: argon2id password hashes, and the sign-in throttle that slows then locks.

After ``FREE_FAILURES`` wrong passwords in a row, each further attempt must wait a doubling
delay (1 s, 2 s, 4 s … up to a minute) and is refused unchecked before then; after
``LOCK_AFTER`` the account is locked for ``LOCK_SECONDS`` even for the right password. The
state lives in the database, so every node and a restart see it. An unknown user name costs a
hash like a known one, so timing does not tell which names exist.
"""

from __future__ import annotations

import enum
import os
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Engine, func, insert, select, update

from scrapeshield.console.roles import Role
from scrapeshield.db.models import ConsoleUserRow

ADMIN_PASSWORD_ENV = "SCRAPESHIELD_ADMIN_PASSWORD"
FREE_FAILURES = 3
LOCK_AFTER = 10
LOCK_SECONDS = 900.0
MAX_DELAY = 60.0
MIN_PASSWORD = 10
NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")

HASHER = PasswordHasher()  # argon2id, 64 MiB, 3 passes: the library's (RFC 9106) defaults
_DUMMY = HASHER.hash("not a real password, only spent time")


class UserError(ValueError):
    """A user name, role or password that cannot be used; the message says why."""


class Outcome(enum.StrEnum):
    OK = "ok"
    WRONG = "wrong"  # unknown user or wrong password (never told apart)
    SLOWED = "slowed"  # too soon after failures: not checked
    LOCKED = "locked"


@dataclass(frozen=True, slots=True)
class User:
    username: str
    role: Role
    disabled: bool
    failures: int
    locked_until: float


@dataclass(frozen=True, slots=True)
class SignIn:
    outcome: Outcome
    user: User | None = None
    retry_after: float = 0.0


def check_name(username: str) -> str:
    name = username.strip().lower()
    if not NAME.match(name):
        raise UserError("user name: 2-64 characters of a-z, 0-9, '.', '_', '-'")
    return name


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD or len(password) > 1024:
        raise UserError(f"password: {MIN_PASSWORD} to 1024 characters")
    return password


def check_role(role: str) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise UserError(f"role must be one of {', '.join(r.value for r in Role)}") from None


class Users:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def count(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ConsoleUserRow)).scalar_one())

    def get(self, username: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ConsoleUserRow).where(ConsoleUserRow.username == username.strip().lower())
            ).mappings().first()
        return _user(row) if row else None

    def all(self) -> list[User]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(ConsoleUserRow).order_by(ConsoleUserRow.username)).mappings()
            return [_user(r) for r in rows]

    def add(self, username: str, role: str, password: str, now: float) -> User:
        name, kind, secret = check_name(username), check_role(role), check_password(password)
        if self.get(name) is not None:
            raise UserError(f"user {name!r} exists already")
        with self.engine.begin() as conn:
            conn.execute(insert(ConsoleUserRow).values(
                username=name, password=HASHER.hash(secret), role=kind.value, created_at=now,
                disabled=0, failures=0, retry_at=0.0, locked_until=0.0))
        user = self.get(name)
        assert user is not None
        return user

    def set_password(self, username: str, password: str) -> None:
        """A new password also lifts a lock-out (an admin reset is how a locked user gets back)."""
        self._set(username, password=HASHER.hash(check_password(password)), failures=0,
                  retry_at=0.0, locked_until=0.0)

    def set_role(self, username: str, role: str) -> None:
        self._set(username, role=check_role(role).value)

    def set_disabled(self, username: str, disabled: bool) -> None:
        self._set(username, disabled=int(disabled))

    def _set(self, username: str, **values: Any) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(update(ConsoleUserRow)
                                .where(ConsoleUserRow.username == username.strip().lower())
                                .values(**values)).rowcount
        if not done:
            raise UserError(f"no user {username!r}")

    def sign_in(self, username: str, password: str, now: float) -> SignIn:
        with self.engine.connect() as conn:
            row = conn.execute(
                select(ConsoleUserRow).where(ConsoleUserRow.username == username.strip().lower()[:64])
            ).mappings().first()
        if row is None or row["disabled"]:
            _spend(password)
            return SignIn(Outcome.WRONG)
        if row["locked_until"] > now:
            return SignIn(Outcome.LOCKED, retry_after=row["locked_until"] - now)
        if row["retry_at"] > now:
            return SignIn(Outcome.SLOWED, retry_after=row["retry_at"] - now)
        try:
            HASHER.verify(row["password"], password)
        except (VerificationError, InvalidHashError):
            return self._failed(row["username"], row["failures"] + 1, now)
        values: dict[str, Any] = {"failures": 0, "retry_at": 0.0, "locked_until": 0.0}
        if HASHER.check_needs_rehash(row["password"]):
            values["password"] = HASHER.hash(password)
        self._set(row["username"], **values)
        return SignIn(Outcome.OK, _user({**row, "failures": 0, "locked_until": 0.0}))

    def _failed(self, username: str, failures: int, now: float) -> SignIn:
        if failures >= LOCK_AFTER:
            self._set(username, failures=failures, locked_until=now + LOCK_SECONDS)
            return SignIn(Outcome.LOCKED, retry_after=LOCK_SECONDS)
        delay = min(MAX_DELAY, 2.0 ** (failures - FREE_FAILURES)) if failures >= FREE_FAILURES else 0.0
        self._set(username, failures=failures, retry_at=now + delay)
        return SignIn(Outcome.WRONG, retry_after=delay)

    def ensure_first_admin(self, now: float) -> str | None:
        """Create user ``admin`` when there are no users at all. Its password comes from
        $SCRAPESHIELD_ADMIN_PASSWORD, else a generated one is returned (to print once)."""
        if self.count():
            return None
        given = os.environ.get(ADMIN_PASSWORD_ENV)
        password = given or secrets.token_urlsafe(15)
        try:
            self.add("admin", Role.ADMIN.value, password, now)
        except UserError:
            if self.count():  # another node or process made it first
                return None
            raise
        return None if given else password


def _spend(password: str) -> None:
    try:
        HASHER.verify(_DUMMY, password)
    except (VerificationError, InvalidHashError):
        pass


def _user(row: Any) -> User:
    return User(row["username"], Role(row["role"]), bool(row["disabled"]), row["failures"],
                row["locked_until"])
