"""Stage 5, challenge: a proof-of-work page, then a signed, expiring, client-bound pass.

Tokens: ``b64url(payload).b64url(mac)``, payload packed, versioned and typed by kind (issued
and sealed by ``challenge_token``, compiled). Client input never raises. Memory is bounded:
solved challenge ids and the foreign networks seen per pass are capped at ``max_entries``;
when full the oldest-expiring entry is evicted rather than refusing visitors (replaying an
evicted id needs ``max_entries`` fresh solutions first, more work than solving once more).
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import hmac
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from struct import Struct
from typing import Any

from scrapeshield.actions.challenge_token import (
    CHALLENGE,
    KIND_CHALLENGE,
    KIND_PASS,
    MAX_RETURN_TO,
    PASS,
    VERIFY_PATH,
    VERSION,
    Issuer,
    b64,
    ms,
    safe_return_to,
    ua_digest,
)
from scrapeshield.clock import Clock

__all__ = ["MAX_RETURN_TO", "PASS_COOKIE", "VERIFY_PATH", "ChallengeService", "ChallengeSettings",
           "PassCheck", "VerifyResult", "safe_return_to"]

PASS_COOKIE = "__scrapeshield_pass"
MAX_TOKEN = 2048
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_SKEW = 60.0  # seconds a token may seem to come from the future (clock skew between nodes)


@dataclass(frozen=True, slots=True)
class ChallengeSettings:
    difficulty_bits: int = 16  # leading zero bits of sha256(challenge_id + ":" + solution)
    challenge_ttl: float = 300.0
    pass_ttl: float = 3600.0
    bind_prefix_v4: int = 16
    bind_prefix_v6: int = 48
    max_networks_per_pass: int = 3


@dataclass(frozen=True, slots=True)
class VerifyResult:
    ok: bool
    reason: str
    pass_cookie: str | None
    return_to: str


@dataclass(frozen=True, slots=True)
class PassCheck:
    valid: bool
    reason: str


class _Expiring:
    """Keys with an expiry: purged lazily, capped, the oldest-expiring evicted first."""

    __slots__ = ("cap", "items", "heap")

    def __init__(self, cap: int) -> None:
        self.cap = max(1, cap)
        self.items: dict[bytes, tuple[bytes, ...]] = {}
        self.heap: list[tuple[float, bytes]] = []

    def put(self, key: bytes, value: tuple[bytes, ...], expiry: float, now: float) -> None:
        while self.heap and (self.heap[0][0] <= now or len(self.items) >= self.cap):
            if key in self.items and self.heap[0][0] > now:
                break  # only replacing a value: no room needed
            self.items.pop(heapq.heappop(self.heap)[1], None)
        if key not in self.items:
            heapq.heappush(self.heap, (expiry, key))
        self.items[key] = value


def _unb64(text: str) -> bytes | None:
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Only the canonical spelling counts: otherwise the unused low bits of the last
    # character let four different strings carry the same signature.
    return raw if b64(raw) == text else None


class ChallengeService:
    def __init__(
        self, secret: bytes, clock: Clock,
        settings: ChallengeSettings = ChallengeSettings(),  # noqa: B008 - frozen, shared
        *, max_entries: int = 100_000,
    ) -> None:
        if not secret:
            raise ValueError("the challenge secret must not be empty")
        self._secret = bytes(secret)
        self._clock = clock
        self.settings = settings
        # Settings are frozen: the issuer works out once what each page needs of them.
        self._issuer = Issuer(self._secret, settings.difficulty_bits, settings.bind_prefix_v4,
                              settings.bind_prefix_v6)
        self._used = _Expiring(max_entries)  # solved challenge ids
        self._foreign = _Expiring(max_entries)  # pass id -> other networks it came from

    def reconfigured(self, settings: ChallengeSettings) -> ChallengeService:
        """The same secret and memory (used ids, revocations) under new settings."""
        other = ChallengeService(self._secret, self._clock, settings)
        other._used, other._foreign = self._used, self._foreign
        return other

    def page(self, client_ip: str, user_agent: str, return_to: str) -> bytes:
        """The challenge page for a client (``return_to``: where it goes once solved)."""
        return self._issuer.page(client_ip, user_agent, return_to, self._clock.now())

    def page_data(self, client_ip: str, user_agent: str, return_to: str) -> str:
        """The per-challenge part of ``page`` (a proxy that fills in the page itself gets this)."""
        return self._issuer.page_data(client_ip, user_agent, return_to, self._clock.now())

    def verify(self, form: Mapping[str, str], client_ip: str, user_agent: str) -> VerifyResult:
        """Check a solved challenge (form keys token, solution, return_to); issue a pass."""
        try:
            fallback = safe_return_to(form.get("return_to"))
            reason, cookie, target = self._verify(form, client_ip, user_agent)
        except Exception:  # a client must never be able to raise into the host
            return VerifyResult(False, "error", None, "/")
        return VerifyResult(cookie is not None, reason, cookie, target or fallback)

    def _verify(self, form: Mapping[str, str], ip: str, agent: str) -> tuple[str, str | None, str]:
        token, solution = form.get("token"), form.get("solution")
        if not isinstance(solution, str) or not 0 < len(solution) <= 64:
            return "malformed", None, ""
        if not (solution.isascii() and solution.isprintable()):
            return "malformed", None, ""
        fields = self._open(token, CHALLENGE, KIND_CHALLENGE)
        if isinstance(fields, str):
            return fields, None, ""
        _, _, cid, issued_ms, bits, net, ua, rest = fields
        target = safe_return_to(rest.decode("ascii", "replace"))
        now = self._clock.now()
        age = now - issued_ms / 1000
        if age > self.settings.challenge_ttl:
            return "expired", None, target
        here = self._network(ip)
        reason = self._binding(age < -_SKEW, here, net, agent, ua)
        if reason:
            return reason, None, target
        if bits < self.settings.difficulty_bits:
            return "weak", None, target
        digest = hashlib.sha256(f"{cid.hex()}:{solution}".encode("ascii")).digest()
        if bits and int.from_bytes(digest, "big") >> (256 - bits):
            return "wrong-solution", None, target
        if cid in self._used.items:
            return "replayed", None, target
        self._used.put(cid, (), issued_ms / 1000 + self.settings.challenge_ttl + _SKEW, now)
        expiry = ms(now + self.settings.pass_ttl)
        pid = secrets.token_bytes(16)
        return "ok", self._issuer.seal(PASS.pack(VERSION, KIND_PASS, pid, expiry, here, ua)), target

    def check_pass(self, cookie_value: str | None, client_ip: str, user_agent: str) -> PassCheck:
        try:
            reason = self._check_pass(cookie_value, client_ip, user_agent)
        except Exception:  # a client must never be able to raise into the host
            reason = "error"
        return PassCheck(reason == "ok", reason)

    def _check_pass(self, cookie_value: str | None, ip: str, agent: str) -> str:
        if not cookie_value:
            return "none"
        fields = self._open(cookie_value, PASS, KIND_PASS)
        if isinstance(fields, str):
            return fields
        _, _, pid, expiry_ms, net, ua, _ = fields
        now, expiry = self._clock.now(), expiry_ms / 1000
        if now > expiry:
            return "expired"
        here = self._network(ip)
        foreign = self._foreign.items.get(pid, ())
        limit = self.settings.max_networks_per_pass
        if here is not None and here != net and here not in foreign and len(foreign) < limit:
            foreign = (*foreign, here)  # one beyond the limit is all it takes to revoke
            self._foreign.put(pid, foreign, expiry, now)
        if 1 + len(foreign) > limit:
            return "revoked"
        return self._binding(False, here, net, agent, ua) or "ok"

    def cookie_header(self, pass_cookie: str, secure: bool) -> str:
        """The Set-Cookie value for a pass from ``verify``."""
        if not _B64.fullmatch(pass_cookie.replace(".", "")) or len(pass_cookie) > MAX_TOKEN:
            raise ValueError("not a pass cookie issued by this service")
        max_age = max(1, int(self.settings.pass_ttl))
        header = f"{PASS_COOKIE}={pass_cookie}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax"
        return header + "; Secure" if secure else header

    def _binding(self, future: bool, here: bytes | None, net: bytes, agent: str, ua: bytes) -> str:
        if future:
            return "malformed"
        if here is None:
            return "bad-client"
        if not hmac.compare_digest(here, net):
            return "wrong-network"
        if not hmac.compare_digest(ua_digest(agent), ua):
            return "wrong-agent"
        return ""

    def _open(self, token: object, layout: Struct, kind: int) -> tuple[Any, ...] | str:
        """The fields of a token this service signed (trailing bytes last), or why not."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
            return "malformed"
        body, sealed = token.split(".")
        payload, tag = _unb64(body), _unb64(sealed)
        if payload is None or tag is None:
            return "malformed"
        mac = self._issuer.mac(payload)  # by the payload's version; None: never issued
        if mac is None or not hmac.compare_digest(mac, tag):
            return "bad-signature"
        if len(payload) < layout.size or payload[1] != kind:
            return "malformed"
        return (*layout.unpack_from(payload), payload[layout.size :])

    def _network(self, client_ip: str) -> bytes | None:
        """A digest of the client's network (the prefix a token is bound to), or None."""
        return self._issuer.network(client_ip)
