"""Where a shield keeps its things: data directory, database URL, state URL, secrets."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from scrapeshield.errors import ConfigError

DATA_DIR_ENV = "SCRAPESHIELD_DATA_DIR"
ADMIN_TOKEN_ENV = "SCRAPESHIELD_ADMIN_TOKEN"
DEFAULT_DATA_DIR = "scrapeshield-data"


@dataclass(frozen=True, slots=True)
class Settings:
    data_dir: Path
    db_url: str
    state_url: str
    policy_path: Path | None

    @classmethod
    def resolve(
        cls,
        data_dir: str | None = None,
        db_url: str | None = None,
        state_url: str | None = None,
        policy_path: str | None = None,
    ) -> Settings:
        state = state_url or "memory"  # checked first: a refused command leaves nothing behind
        if state != "memory" and not state.startswith(("redis://", "rediss://", "valkey://")):
            raise ConfigError(f"--state must be 'memory' or a redis:// URL, not {state!r}")
        if state != "memory":
            raise ConfigError("the Redis state backend is not available in this version; use memory")
        directory = Path(data_dir or os.environ.get(DATA_DIR_ENV) or DEFAULT_DATA_DIR)
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"cannot create data directory {directory}: {exc}") from exc
        return cls(
            data_dir=directory.resolve(),
            db_url=db_url or f"sqlite:///{directory.resolve() / 'scrapeshield.db'}",
            state_url=state,
            policy_path=Path(policy_path) if policy_path else None,
        )

    def master_key(self) -> bytes:
        """32 random bytes kept in the data directory (mode 0600), made on first use."""
        return _secret_file(self.data_dir / "secret.key", lambda: secrets.token_bytes(32))

    def derived_key(self, purpose: str) -> bytes:
        return hmac.new(self.master_key(), purpose.encode(), hashlib.sha256).digest()

    def admin_token(self) -> str:
        """From SCRAPESHIELD_ADMIN_TOKEN, else a random token kept in ``admin.token``."""
        from_env = os.environ.get(ADMIN_TOKEN_ENV)
        if from_env:
            return from_env
        raw = _secret_file(
            self.data_dir / "admin.token", lambda: secrets.token_urlsafe(32).encode()
        )
        return raw.decode().strip()

    @property
    def admin_token_path(self) -> Path:
        return self.data_dir / "admin.token"


def _secret_file(path: Path, make: object) -> bytes:
    if path.exists():
        return path.read_bytes()
    value: bytes = make()  # type: ignore[operator]
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(value)
    return value
