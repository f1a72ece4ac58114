"""Stage 5, challenge: a proof-of-work page, then a signed, expiring, client-bound pass.

Tokens: ``b64url(payload).b64url(hmac)``, payload packed, versioned and typed by kind.
Client input never raises. Memory is bounded: solved challenge ids and the foreign networks
seen per pass are capped at ``max_entries``; when full the oldest-expiring entry is evicted
rather than refusing visitors (replaying an evicted id needs ``max_entries`` fresh solutions
first, more work than solving once more).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import heapq
import hmac
import ipaddress
import os
import re
import secrets
import socket
import struct
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from scrapeshield.actions.challenge_page import page_data, page_parts
from scrapeshield.clock import Clock
from scrapeshield.keyed_hash import HmacSha256

VERIFY_PATH = "/.scrapeshield/verify"
PASS_COOKIE = "__scrapeshield_pass"
MAX_RETURN_TO = 1024
MAX_TOKEN = 2048
_CHALLENGE = struct.Struct(">BB16sQB8s8s")  # version, kind "c", id, issued ms, bits, net, ua
_PASS = struct.Struct(">BB16sQ8s8s")  # version, kind "p", id, expiry ms, net, ua
_B64 = re.compile(r"[A-Za-z0-9_-]+")
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A path that ``safe_return_to`` keeps as it is: characters ``quote`` leaves alone, one leading
# slash (no scheme or host can follow), no control character or backslash.
_PLAIN_PATH = re.compile(r"/(?!/)[A-Za-z0-9_.~/?&=:;@!$'()*+,%#\[\]-]*")
# A dotted quad as ipaddress accepts it (decimal, no leading zeros), for socket.inet_aton.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_DOTTED_QUAD = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_B64_URL = bytes.maketrans(b"+/", b"-_")
_MAC_PREFIX = b"scrapeshield/challenge:"
_SKEW = 60.0  # seconds a token may seem to come from the future (clock skew between nodes)
# Bounded memos of the per-challenge work that repeats (strings and bytes only: the GC skips
# them), cleared when full; only short keys are kept, so each stays within a few megabytes.
_MEMO_MAX = 16_384
_MEMO_KEY = 256
_UA_DIGESTS: dict[str, bytes] = {}
_RETURN_TOS: dict[str, str] = {}
_IDS = 256  # challenge ids drawn from the OS at a time
_ids: Iterator[bytes] = iter(())


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


def safe_return_to(value: object) -> str:
    """A local path to send the browser back to, or "/" (never an open redirect)."""
    if not isinstance(value, str) or not value.startswith("/") or value.startswith("//"):
        return "/"
    if len(value) <= MAX_RETURN_TO and _PLAIN_PATH.fullmatch(value):
        return value  # what the checks below return for it, without quote and urlsplit
    if len(value) > MAX_RETURN_TO or "\\" in value or _CONTROL.search(value):
        return "/"
    try:  # percent-encode the rest (spaces, quotes, non-ASCII): a Location must be ASCII
        quoted = quote(value, safe="/?&=:;@!$'()*+,~-._%#[]")
        parts = urlsplit(quoted)
    except ValueError:  # lone surrogates, bad brackets
        return "/"
    if parts.scheme or parts.netloc or len(quoted) > MAX_RETURN_TO:
        return "/"
    return quoted


def _b64(raw: bytes) -> str:
    # base64.urlsafe_b64encode without its Python-level layers (a page is built per challenge)
    return binascii.b2a_base64(raw, newline=False).translate(_B64_URL).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes | None:
    if not _B64.fullmatch(text) or len(text) % 4 == 1:
        return None
    raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    # Only the canonical spelling counts: otherwise the unused low bits of the last
    # character let four different strings carry the same signature.
    return raw if _b64(raw) == text else None


def _ua(user_agent: str) -> bytes:
    memo = type(user_agent) is str and len(user_agent) <= _MEMO_KEY
    digest = _UA_DIGESTS.get(user_agent) if memo else None
    if digest is None:
        digest = hashlib.sha256(b"ua:" + str(user_agent).encode("utf-8", "surrogatepass")).digest()[:8]
        if memo:
            if len(_UA_DIGESTS) >= _MEMO_MAX:
                _UA_DIGESTS.clear()
            _UA_DIGESTS[user_agent] = digest
    return digest


def _return_to(value: str) -> str:
    """``safe_return_to``, remembered per path (a page is served per challenge)."""
    if len(value) > _MEMO_KEY:
        return safe_return_to(value)
    target = _RETURN_TOS.get(value)
    if target is None:
        target = safe_return_to(value)
        if len(_RETURN_TOS) >= _MEMO_MAX:
            _RETURN_TOS.clear()
        _RETURN_TOS[value] = target
    return target


def _ipv4_number(text: str) -> int | None:
    """A dotted-quad IPv4 address in the form ipaddress accepts, as a number; else None."""
    if _DOTTED_QUAD.fullmatch(text) is None:
        return None
    return int.from_bytes(socket.inet_aton(text), "big")


def _random_id() -> bytes:
    """16 random bytes (``secrets.token_bytes(16)``), from a pool filled ``_IDS`` at a time:
    one system call per ``_IDS`` challenges rather than one each. Each id is handed out once
    (``next`` on a list iterator is atomic), and a forked child starts a pool of its own."""
    global _ids
    cid = next(_ids, None)
    if cid is None:
        raw = os.urandom(16 * _IDS)
        _ids = iter([raw[at : at + 16] for at in range(0, len(raw), 16)])
        cid = next(_ids)
    return cid


def _new_pool() -> None:
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_new_pool)


def _ms(seconds: float) -> int:
    return max(0, min(int(seconds * 1000), 2**64 - 1))


class ChallengeService:
    def __init__(
        self, secret: bytes, clock: Clock,
        settings: ChallengeSettings = ChallengeSettings(),  # noqa: B008 - frozen, shared
        *, max_entries: int = 100_000,
    ) -> None:
        if not secret:
            raise ValueError("the challenge secret must not be empty")
        self._secret = bytes(secret)
        self._keyed = HmacSha256(self._secret, _MAC_PREFIX)
        self._networks: dict[str, bytes] = {}  # network key -> its digest
        self._networks_v4: dict[int, bytes] = {}  # an IPv4 network's number -> its digest
        self._by_address: dict[str, bytes] = {}  # a client address -> its network's digest
        self._clock = clock
        self.settings = settings
        # Settings are frozen: what each page needs of them, worked out once.
        self._bits = max(0, min(settings.difficulty_bits, 255))
        self._v4_shift = 32 - max(0, min(settings.bind_prefix_v4, 32))
        self._used = _Expiring(max_entries)  # solved challenge ids
        self._foreign = _Expiring(max_entries)  # pass id -> other networks it came from

    def reconfigured(self, settings: ChallengeSettings) -> ChallengeService:
        """The same secret and memory (used ids, revocations) under new settings."""
        other = ChallengeService(self._secret, self._clock, settings)
        other._used, other._foreign = self._used, self._foreign
        return other

    def page(self, client_ip: str, user_agent: str, return_to: str) -> bytes:
        before, after = page_parts(VERIFY_PATH)
        return b"".join((before, self.page_data(client_ip, user_agent, return_to).encode(), after))

    def page_data(self, client_ip: str, user_agent: str, return_to: str) -> str:
        """The per-challenge part of ``page`` (a proxy that fills in the page itself gets this)."""
        target, cid = _return_to(return_to), _random_id()
        bits = self._bits
        net, issued = self._network(client_ip) or bytes(8), _ms(self._clock.now())
        payload = _CHALLENGE.pack(1, ord("c"), cid, issued, bits, net, _ua(user_agent))
        return page_data(cid.hex(), bits, target, self._seal(payload + target.encode("ascii")))

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
        fields = self._open(token, _CHALLENGE, ord("c"))
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
        expiry = _ms(now + self.settings.pass_ttl)
        pid = secrets.token_bytes(16)
        return "ok", self._seal(_PASS.pack(1, ord("p"), pid, expiry, here, ua)), target

    def check_pass(self, cookie_value: str | None, client_ip: str, user_agent: str) -> PassCheck:
        try:
            reason = self._check_pass(cookie_value, client_ip, user_agent)
        except Exception:  # a client must never be able to raise into the host
            reason = "error"
        return PassCheck(reason == "ok", reason)

    def _check_pass(self, cookie_value: str | None, ip: str, agent: str) -> str:
        if not cookie_value:
            return "none"
        fields = self._open(cookie_value, _PASS, ord("p"))
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
        if not hmac.compare_digest(_ua(agent), ua):
            return "wrong-agent"
        return ""

    def _mac(self, payload: bytes) -> bytes:
        return self._keyed.digest(payload)  # = hmac.new(secret, prefix + payload, sha256).digest()

    def _seal(self, payload: bytes) -> str:
        return f"{_b64(payload)}.{_b64(self._keyed.digest(payload))}"  # self._mac(payload)

    def _open(self, token: object, layout: struct.Struct, kind: int) -> tuple[Any, ...] | str:
        """The fields of a token this service signed (trailing bytes last), or why not."""
        if not isinstance(token, str) or len(token) > MAX_TOKEN or token.count(".") != 1:
            return "malformed"
        body, mac = token.split(".")
        payload, tag = _unb64(body), _unb64(mac)
        if payload is None or tag is None:
            return "malformed"
        if not hmac.compare_digest(self._mac(payload), tag):
            return "bad-signature"
        if len(payload) < layout.size or payload[0] != 1 or payload[1] != kind:
            return "malformed"
        return (*layout.unpack_from(payload), payload[layout.size :])

    def _network(self, client_ip: str) -> bytes | None:
        """A digest of the client's network (the prefix a token is bound to), or None."""
        # Remembered per address too: a challenged client is challenged again at its next
        # read, and parsing an address costs more than the rest of this look-up.
        memo = type(client_ip) is str and len(client_ip) <= _MEMO_KEY
        if memo:
            known = self._by_address.get(client_ip)
            if known is not None:
                return known
        digest = self._network_of(client_ip)
        if memo and digest is not None:
            if len(self._by_address) >= _MEMO_MAX:
                self._by_address.clear()
            self._by_address[client_ip] = digest
        return digest

    def _network_of(self, client_ip: str) -> bytes | None:
        try:
            text = client_ip.strip()
        except AttributeError:
            return None
        number = _ipv4_number(text)  # the usual case, without an ipaddress object
        if number is not None:
            shift = self._v4_shift
            digest = self._networks_v4.get(number >> shift)
            if digest is None:
                digest = self._digest(f"4/{shift}/{number >> shift:x}")
                if len(self._networks_v4) >= _MEMO_MAX:
                    self._networks_v4.clear()
                self._networks_v4[number >> shift] = digest
            return digest
        try:
            addr = ipaddress.ip_address(text)
        except ValueError:
            return None
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        version, width, value = addr.version, addr.max_prefixlen, int(addr)
        prefix = self.settings.bind_prefix_v4 if version == 4 else self.settings.bind_prefix_v6
        shift = width - max(0, min(prefix, width))
        key = f"{version}/{shift}/{value >> shift:x}"
        digest = self._networks.get(key)
        if digest is None:
            digest = self._digest(key)
            if len(self._networks) >= _MEMO_MAX:
                self._networks.clear()
            self._networks[key] = digest
        return digest

    @staticmethod
    def _digest(network_key: str) -> bytes:
        return hashlib.sha256(b"net:" + network_key.encode()).digest()[:8]
