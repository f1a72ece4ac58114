"""Where a shield keeps its things: data directory, database URL, state URL, secrets."""

from __future__ import annotations

import hashlib
import hmac
import importlib.util
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from scrapeshield.errors import ConfigError

DATA_DIR_ENV = "SCRAPESHIELD_DATA_DIR"
ADMIN_TOKEN_ENV = "SCRAPESHIELD_ADMIN_TOKEN"
DEFAULT_DATA_DIR = "scrapeshield-data"
STATE_SCHEMES = ("redis", "rediss", "valkey", "valkeys",
                 "redis+cluster", "rediss+cluster", "valkey+cluster", "valkeys+cluster")
# Query keys of a --state URL that redis-py does not own: ours.
_STATE_KEYS = {"prefix": str, "timeout": float, "failures": int, "reset": float}
# Query keys passed on to redis-py (connection details, never its time-outs or retries).
_REDIS_KEYS = {"protocol", "ssl_check_hostname", "ssl_min_version", "ssl_include_verify_flags",
               "ssl_exclude_verify_flags", "socket_keepalive", "socket_read_size"}


@dataclass(frozen=True, slots=True)
class RedisState:
    """``--state redis://[user:password@]host:port/db?timeout=0.05&failures=3&reset=5&prefix=ss``

    ``timeout``: seconds a call to Redis may take (connect included) before it counts
    as failed; ``failures`` in a row open the circuit for ``reset`` seconds (then one
    call probes); ``prefix`` starts every key. ``valkey://`` is the same protocol;
    ``redis+cluster://`` (or ``valkey+cluster://``, ``rediss+cluster://``) names one node of
    a Redis Cluster, whose other nodes are found from it (database 0 only).
    """

    url: str  # for redis-py, without our own query keys
    prefix: str = "ss"
    timeout: float = 0.05
    failures: int = 3
    reset: float = 5.0

    @classmethod
    def parse(cls, url: str) -> RedisState:
        parts = urlsplit(url)
        if parts.password:  # never echo a password back in an error
            url = url.replace(f":{parts.password}@", ":***@", 1)
        if parts.scheme not in STATE_SCHEMES:
            raise ConfigError(f"--state must be 'memory' or a redis:// URL, not {url!r}")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigError(f"--state {url!r}: {exc}") from exc
        if not parts.hostname or port == 0:
            raise ConfigError(f"--state {url!r}: a host (and port) is needed, e.g. redis://127.0.0.1:6379/0")
        path = parts.path.strip("/")
        if path and not (path.isascii() and path.isdigit()):
            raise ConfigError(f"--state {url!r}: the path must be a database number, not {path!r}")
        if parts.scheme.endswith("+cluster") and path not in ("", "0"):
            raise ConfigError(f"--state {url!r}: a Redis Cluster has database 0 only")
        ours: dict[str, object] = {}
        theirs: list[tuple[str, str]] = []
        for key, value in parse_qsl(parts.query, keep_blank_values=True):
            if key in _STATE_KEYS:
                try:
                    ours[key] = _STATE_KEYS[key](value)
                except ValueError:
                    raise ConfigError(f"--state: {key}={value!r} is not a number") from None
            elif key in _REDIS_KEYS:
                theirs.append((key, value))
            else:
                known = ", ".join(sorted([*_STATE_KEYS, *_REDIS_KEYS]))
                raise ConfigError(f"--state: unknown option {key!r} (known: {known})")
        kept = urlunsplit(parts._replace(query=urlencode(theirs)))
        state = cls(kept, **ours)  # type: ignore[arg-type]
        if not 0 < state.timeout <= 10 or state.failures < 1 or not 0 < state.reset <= 3600:
            raise ConfigError("--state: timeout must be in (0, 10], failures >= 1, reset in (0, 3600]")
        if not state.prefix or any(c in state.prefix for c in "{} "):
            raise ConfigError(f"--state: prefix {state.prefix!r} must be non-empty, without braces or spaces")
        return state


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
        if state != "memory":
            RedisState.parse(state)
            if importlib.util.find_spec("redis") is None or importlib.util.find_spec("hiredis") is None:
                raise ConfigError(
                    "--state redis://… needs redis-py and hiredis: pip install 'scrapeshield[redis]'")
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

    def redis_state(self) -> RedisState | None:
        """The Redis state settings, or None for in-process state."""
        return None if self.state_url == "memory" else RedisState.parse(self.state_url)

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
