"""Challenge tokens, the compiled half of the challenge: issuing one (its id, its binding to the
client's network and agent, its seal) and the MACs that open tokens again.

A token is ``b64url(payload).b64url(mac)``; the payload's first byte is its version, which names
the MAC: 2, keyed BLAKE2b (issued now: one hash by CPython's own code, where HMAC-SHA256 through
OpenSSL's provider layer costs about three times as much per challenge page), or 1,
HMAC-SHA256 (issued before, and still opened: passes already handed out last until they expire).
Both keyed with the service's secret and separated from its other uses of it (a prefix, a
personalisation string). ``challenge.py`` holds what is kept between requests.
"""

from __future__ import annotations

import binascii
import hashlib
import ipaddress
import os
import re
import struct
from collections.abc import Iterator
from typing import Final, final
from urllib.parse import quote, urlsplit

from scrapeshield.actions.challenge_page import page_data, page_parts
from scrapeshield.context import ipv4_number
from scrapeshield.keyed_hash import HmacSha256, KeyedBlake2b

VERIFY_PATH: Final = "/.scrapeshield/verify"
MAX_RETURN_TO: Final = 1024
VERSION: Final = 2  # of the tokens issued: keyed BLAKE2b (1: HMAC-SHA256, opened only)
CHALLENGE: Final = struct.Struct(">BB16sQB8s8s")  # version, kind "c", id, issued ms, bits, net, ua
PASS: Final = struct.Struct(">BB16sQ8s8s")  # version, kind "p", id, expiry ms, net, ua
KIND_CHALLENGE: Final = ord("c")
KIND_PASS: Final = ord("p")
_HMAC_PREFIX: Final = b"scrapeshield/challenge:"  # version 1
_BLAKE_PERSON: Final = b"scrapeshield/chl"  # version 2 (BLAKE2b's personalisation: 16 bytes at most)
_CONTROL: Final = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# A path that ``safe_return_to`` keeps as it is: characters ``quote`` leaves alone, one leading
# slash (no scheme or host can follow), no control character or backslash.
_PLAIN_PATH: Final = re.compile(r"/(?!/)[A-Za-z0-9_.~/?&=:;@!$'()*+,%#\[\]-]*")
_B64_URL: Final = bytes.maketrans(b"+/", b"-_")
# Bounded memos of the per-challenge work that repeats (strings and bytes only: the GC skips
# them), cleared when full; only short keys are kept, so each stays within a few megabytes.
_MEMO_MAX: Final = 16_384
_MEMO_KEY: Final = 256
_UA_DIGESTS: dict[str, bytes] = {}
_RETURN_TOS: dict[str, str] = {}
IDS: Final = 256  # challenge ids drawn from the OS at a time
_ids: Iterator[bytes] = iter(())


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


def b64(raw: bytes) -> str:
    """base64url without padding (``base64.urlsafe_b64encode`` without its Python-level layers)."""
    return binascii.b2a_base64(raw, newline=False).translate(_B64_URL).rstrip(b"=").decode("ascii")


def ua_digest(user_agent: str) -> bytes:
    """What a token binds of the user agent: 8 bytes of its SHA-256 (remembered)."""
    memo = len(user_agent) <= _MEMO_KEY
    digest = _UA_DIGESTS.get(user_agent) if memo else None
    if digest is None:
        digest = hashlib.sha256(b"ua:" + user_agent.encode("utf-8", "surrogatepass")).digest()[:8]
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


def random_id() -> bytes:
    """16 random bytes (``secrets.token_bytes(16)``), from a pool filled ``IDS`` at a time:
    one system call per ``IDS`` challenges rather than one each. Each id is handed out once
    (``next`` on a list iterator is atomic), and a forked child starts a pool of its own."""
    global _ids
    cid = next(_ids, None)
    if cid is None:
        raw = os.urandom(16 * IDS)
        _ids = iter([raw[at : at + 16] for at in range(0, len(raw), 16)])
        cid = next(_ids)
    return cid


def _new_pool() -> None:
    global _ids
    _ids = iter(())


os.register_at_fork(after_in_child=_new_pool)


def ms(seconds: float) -> int:
    return max(0, min(int(seconds * 1000), 2**64 - 1))


@final
class Issuer:
    """Issues challenges and seals tokens for one secret and one set of settings."""

    def __init__(self, secret: bytes, bits: int, prefix_v4: int, prefix_v6: int) -> None:
        self._hmac = HmacSha256(secret, _HMAC_PREFIX)
        self._blake = KeyedBlake2b(secret, _BLAKE_PERSON)
        self._bits = max(0, min(bits, 255))
        self._v4_shift = 32 - max(0, min(prefix_v4, 32))
        self._prefix_v6 = prefix_v6
        self._prefix_v4 = prefix_v4
        self._networks: dict[str, bytes] = {}  # network key -> its digest
        self._networks_v4: dict[int, bytes] = {}  # an IPv4 network's number -> its digest
        self._by_address: dict[str, bytes] = {}  # a client address -> its network's digest
        self._before, self._after = page_parts(VERIFY_PATH)

    def page(self, client_ip: str, user_agent: str, return_to: str, now: float) -> bytes:
        """The challenge page for this client, issued at ``now``."""
        data = self.page_data(client_ip, user_agent, return_to, now).encode()
        return b"".join((self._before, data, self._after))

    def page_data(self, client_ip: str, user_agent: str, return_to: str, now: float) -> str:
        """The per-challenge part of ``page`` (a proxy that fills in the page itself gets this)."""
        target, cid = _return_to(return_to), random_id()
        bits = self._bits
        net, ua = self.network(client_ip) or bytes(8), ua_digest(user_agent)
        payload = CHALLENGE.pack(VERSION, KIND_CHALLENGE, cid, ms(now), bits, net, ua)
        return page_data(cid.hex(), bits, target, self.seal(payload + target.encode("ascii")))

    def seal(self, payload: bytes) -> str:
        """The token of a payload that starts with ``VERSION``."""
        return f"{b64(payload)}.{b64(self._blake.digest(payload))}"

    def mac(self, payload: bytes) -> bytes | None:
        """The MAC of a payload by its version byte, or None for a version never issued."""
        if not payload:
            return None
        if payload[0] == VERSION:
            return self._blake.digest(payload)
        if payload[0] == 1:
            return self._hmac.digest(payload)
        return None

    def network(self, client_ip: str) -> bytes | None:
        """A digest of the client's network (the prefix a token is bound to), or None."""
        # Remembered per address too: a challenged client is challenged again at its next
        # read, and parsing an address costs more than the rest of this look-up.
        memo = len(client_ip) <= _MEMO_KEY
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
        text = client_ip.strip()
        number = ipv4_number(text)  # the usual case, without an ipaddress object
        if number >= 0:
            shift = self._v4_shift
            digest = self._networks_v4.get(number >> shift)
            if digest is None:
                digest = _network_digest(f"4/{shift}/{number >> shift:x}")
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
        prefix = self._prefix_v4 if version == 4 else self._prefix_v6
        shift = width - max(0, min(prefix, width))
        key = f"{version}/{shift}/{value >> shift:x}"
        digest = self._networks.get(key)
        if digest is None:
            digest = _network_digest(key)
            if len(self._networks) >= _MEMO_MAX:
                self._networks.clear()
            self._networks[key] = digest
        return digest


def _network_digest(network_key: str) -> bytes:
    return hashlib.sha256(b"net:" + network_key.encode()).digest()[:8]
