"""Which app tokens the platform issued: signed JWTs checked against its key.

Without this the shield cannot tell the platform's app from a fleet that puts made-up tokens
on its requests, and a read with any token is exempt from the campaign counters. With
``identity.token_verify`` a token counts only when its signature, issuer, audience and
validity period check out at the request's own time (the engine's clock, so replays judge
tokens as they stood then). Results are memoised per token digest; raw tokens are not kept.
"""

from __future__ import annotations

import math
import os

import jwt

from scrapeshield.errors import ConfigError
from scrapeshield.policy.schema import TokenVerify

LEEWAY = 30.0  # seconds of clock skew allowed between the token's issuer and the shield
MEMO_SIZE = 100_000  # digests remembered; the memo starts over when full (bounded memory)
_INVALID = (math.inf, -math.inf)  # valid at no time


class TokenVerifier:
    def __init__(self, config: TokenVerify, environ: dict[str, str] | None = None) -> None:
        key = (os.environ if environ is None else environ).get(config.key_env, "")
        if not key:
            raise ConfigError(f"identity.token_verify: the environment variable {config.key_env} "
                              "(the key that verifies the platform's tokens) is not set")
        self._key = key
        self._algorithms = list(config.algorithms)
        self._issuer = config.issuer
        self._audience = config.audience
        self._prefix = config.scheme + " " if config.scheme else ""
        self._memo: dict[str, tuple[float, float]] = {}  # digest -> (not before, expires)

    def valid(self, token: str, digest: str, now: float) -> bool:
        """Whether ``token`` (the header's value) is one the platform signed, valid at ``now``."""
        window = self._memo.get(digest)
        if window is None:
            window = self._check(token)
            if len(self._memo) >= MEMO_SIZE:
                self._memo.clear()
            self._memo[digest] = window
        return window[0] - LEEWAY <= now < window[1] + LEEWAY

    def _check(self, value: str) -> tuple[float, float]:
        if self._prefix:
            if value[:len(self._prefix)].lower() != self._prefix.lower():
                return _INVALID
            value = value[len(self._prefix):]
        try:
            claims = jwt.decode(
                value.strip(), self._key, algorithms=self._algorithms, issuer=self._issuer,
                audience=self._audience,
                # Expiry is judged against the request's time below, not this machine's clock.
                options={"require": ["exp"], "verify_exp": False, "verify_nbf": False,
                         "verify_iat": False, "verify_aud": self._audience is not None},
            )
            expires = float(claims["exp"])
            not_before = float(claims.get("nbf", 0.0))
        except (jwt.PyJWTError, TypeError, ValueError, OverflowError):
            return _INVALID
        return not_before, expires
