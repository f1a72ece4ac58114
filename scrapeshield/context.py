"""Stage 1: a raw request (ASGI scope, WSGI environ, log line) → RequestContext.

Resolves the client IP through trusted proxies only, maps the path to a route
and the personal record it exposes, and derives the identity keys (account,
session, token, fingerprint). Secrets (cookies, tokens) are kept only as hashes.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.tokens import TokenVerifier
from scrapeshield.types import RequestContext

# Final: the compiled build (scripts/compile.py) then reads them as constants, not module globals.
MAX_VALUE: Final = 1024  # longest header value kept; longer ones are truncated
MAX_HEADERS: Final = 128  # headers kept per request; the rest are ignored
MAX_PATH: Final = 2048
MAX_QUERY: Final = 512
_CACHE_MAX: Final = 200_000
PASS_COOKIE: Final = "__scrapeshield_pass"  # actions.challenge.PASS_COOKIE, kept here to avoid a cycle
# Headers whose presence varies from one request of the same client to the next.
VOLATILE_HEADERS: Final = frozenset(
    "cookie referer x-forwarded-for x-forwarded-proto x-forwarded-host x-real-ip forwarded "
    "content-length content-type origin cache-control pragma if-none-match if-modified-since "
    "sec-fetch-site sec-fetch-mode sec-fetch-dest sec-fetch-user upgrade-insecure-requests "
    "accept priority authorization range x-requested-with purpose sec-purpose".split()
)


def short_hash(value: str) -> str:
    """Stable 16-hex-digit hash, the same on every node (unlike ``hash()``)."""
    return hashlib.blake2b(value.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


class ContextBuilder:
    """Turns requests into contexts under one compiled policy."""

    def __init__(self, policy: CompiledPolicy) -> None:
        self.policy = policy
        identity = policy.source.identity
        self._session_cookie = identity.session_cookie
        self._token_header = identity.token_header.lower()
        # Only tokens the platform signed count as tokens, when it says how to check them.
        self._tokens = TokenVerifier(identity.token_verify) if identity.token_verify else None
        self._tls_header = identity.tls_fingerprint_header.lower()
        self._h2_header = identity.h2_fingerprint_header.lower()
        self._trusted = policy.trusted_proxies
        self._trusted_v4 = [
            (int(net.network_address), int(net.broadcast_address))
            for net in policy.trusted_proxies
            if net.version == 4
        ]
        self._trust_cache: dict[str, bool] = {}
        self._ip_cache: dict[str, str | tuple[str, str] | None] = {}  # see _parse_ip
        self._fp_cache: dict[str, str] = {}
        self._secret_cache: dict[str, str] = {}  # session/token → hash (only hashes leave here)

    # -- entry points -------------------------------------------------------------

    def from_asgi(self, scope: dict[str, object], ts: float) -> RequestContext:
        """The hot path: one pass over the raw ASGI headers."""
        client = scope.get("client")
        peer = client[0] if isinstance(client, (tuple, list)) and client else ""
        raw: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()  # type: ignore[assignment]
        hdrs = tuple(
            [(k.decode("latin-1"), v[:MAX_VALUE].decode("latin-1")) for k, v in raw[:MAX_HEADERS]]
        )
        query = scope.get("query_string") or b""
        return self._assemble(
            ts, str(peer), str(scope.get("method") or "GET"), str(scope.get("path") or "/"),
            hdrs, str(scope.get("scheme") or "http"),
            query[:MAX_QUERY].decode("latin-1") if isinstance(query, bytes) else "",
        )

    def build(
        self,
        ts: float,
        peer: str,
        method: str,
        path: str,
        headers: Iterable[tuple[str, str]],
        scheme: str = "http",
        query: str = "",
    ) -> RequestContext:
        """``headers``: (lower-case name, value) pairs in the order received."""
        hdrs = tuple([(name, value[:MAX_VALUE]) for name, value in headers][:MAX_HEADERS])
        return self._assemble(ts, peer, method, path, hdrs, scheme, query[:MAX_QUERY])

    def _assemble(
        self,
        ts: float,
        peer: str,
        method: str,
        path: str,
        hdrs: tuple[tuple[str, str], ...],
        scheme: str,
        query: str = "",
    ) -> RequestContext:
        names = tuple([name for name, _ in hdrs])
        # Each name's first value (built in C: later pairs overwrite, so reversed order leaves the
        # first); the Cookie and X-Forwarded-For headers, which may repeat, are taken out whole.
        first = dict(reversed(hdrs))
        cookie = ""
        if "cookie" in first:
            if names.count("cookie") == 1:
                cookie = first.pop("cookie")
            else:
                del first["cookie"]
                for name, value in hdrs:
                    if name == "cookie":
                        cookie = f"{cookie}; {value}" if cookie else value
        forwarded: list[str] = []
        if "x-forwarded-for" in first:
            del first["x-forwarded-for"]
            forwarded = [value for name, value in hdrs if name == "x-forwarded-for"]
        # Only a trusted peer's forwarding headers count; most requests carry none.
        peer_trusted = bool(self._trusted) and self._is_trusted(peer)
        if peer_trusted:
            ip, network = self._client_address(peer, forwarded)
            tls = first.get(self._tls_header, "")[:256]
            h2 = first.get(self._h2_header, "")[:256]
            proto = first.get("x-forwarded-proto")
            if proto in ("http", "https"):
                scheme = proto
        else:
            ip, network = self._parse_ip(peer) or ("0.0.0.0", "0.0.0.0/24")
            tls = h2 = ""
        if len(path) > MAX_PATH:
            path = path[:MAX_PATH]
        route, record = self.policy.route_for(path or "/")
        ua = first.get("user-agent", "")
        account = session = pass_cookie = ""
        if cookie:
            cookies = _cookies(cookie, (self._session_cookie, PASS_COOKIE))
            session_raw = cookies.get(self._session_cookie, "")
            if session_raw:
                session = self._hash(session_raw)
                if self.policy.account_regex is not None:
                    m = self.policy.account_regex.match(session_raw)
                    if m is not None and m.groups():
                        account = m.group(1)[:128]
            pass_cookie = cookies.get(PASS_COOKIE, "")[:1024]
        token_raw = first.get(self._token_header, "")
        token = self._hash(token_raw) if token_raw else ""
        if token and self._tokens is not None and not self._tokens.valid(token_raw, token, ts):
            token = ""  # a token the platform did not sign is no token
        return RequestContext(
            ts,
            ip,
            network,
            "https" if scheme in ("https", "wss") else "http",
            method.upper()[:16],
            path or "/",
            route.name if route is not None else "",
            record[:160],
            hdrs,
            ua,
            account,
            session,
            token,
            self._fingerprint(ua, names, first, f"{tls}|{h2}" if h2 else tls),
            tls,
            first.get("referer", ""),
            pass_cookie,
            route.asset if route is not None else False,
            route.cost if route is not None else 1,
            first.get("host", ""),
            first.get("sec-ch-ua"),
            names,
            query,
            h2,
        )

    # -- helpers ------------------------------------------------------------------

    def _hash(self, secret: str) -> str:
        hashed = self._secret_cache.get(secret)
        if hashed is None:
            hashed = short_hash(secret)
            if len(self._secret_cache) >= _CACHE_MAX:
                self._secret_cache.clear()
            self._secret_cache[secret] = hashed
        return hashed

    def is_trusted(self, peer: str) -> bool:
        """Whether ``peer`` is one of the policy's trusted proxies."""
        return bool(self._trusted) and self._is_trusted(peer)

    def _is_trusted(self, peer: str) -> bool:
        known = self._trust_cache.get(peer)
        if known is None:
            parsed = self._parse_ip(peer)
            known = False
            if parsed is not None:
                text = parsed[0]
                if ":" not in text:  # IPv4: integer range checks, no ipaddress objects
                    a, b, c, d = (int(x) for x in text.split("."))
                    number = (a << 24) | (b << 16) | (c << 8) | d
                    known = any(low <= number <= high for low, high in self._trusted_v4)
                else:
                    addr = ipaddress.ip_address(text)
                    known = any(addr in net for net in self._trusted)
            if len(self._trust_cache) >= _CACHE_MAX:
                self._trust_cache.clear()
            self._trust_cache[peer] = known
        return known

    def _client_address(self, peer: str, forwarded: list[str]) -> tuple[str, str]:
        """The rightmost X-Forwarded-For entry not added by a trusted proxy, else the peer."""
        parsed = self._parse_ip(peer) or ("0.0.0.0", "0.0.0.0/24")
        if forwarded:
            hops = ",".join(forwarded).split(",")
            for hop in reversed(hops[-32:]):
                candidate = self._parse_ip(hop.strip())
                if candidate is None:
                    break  # malformed entries come from the untrusted side: stop here
                parsed = candidate
                if not self._is_trusted(candidate[0]):
                    break
        return parsed

    def _parse_ip(self, text: str) -> tuple[str, str] | None:
        cached = self._ip_cache.get(text, False)
        if cached is not False:
            if type(cached) is str:
                return text, cached
            return cached  # type: ignore[return-value]
        result = _parse_ipv4(text) or _parse_any_ip(text)
        if len(self._ip_cache) >= _CACHE_MAX:
            self._ip_cache.clear()
        # An address already in canonical form (nearly all) is cached as its network alone: a
        # dict of strings is never tracked by the garbage collector, one of tuples is re-tracked
        # at each insertion and then walked whole by the next collections.
        self._ip_cache[text] = result[1] if result is not None and result[0] == text else result
        return result

    def _fingerprint(self, ua: str, names: tuple[str, ...], first: dict[str, str], tls: str) -> str:
        """A client's claimed identity: UA, header names in order, language, TLS."""
        # Keyed by the joined text (not a tuple): a dict of strings stays untracked by the GC.
        key = "\x1f".join(
            [ua, first.get("accept-language", ""), tls, *[n for n in names if n not in VOLATILE_HEADERS]])
        fp = self._fp_cache.get(key)
        if fp is None:
            fp = short_hash(key)
            if len(self._fp_cache) >= _CACHE_MAX:
                self._fp_cache.clear()
            self._fp_cache[key] = fp
        return fp


def _parse_any_ip(text: str) -> tuple[str, str] | None:
    try:
        addr = ipaddress.ip_address(text[:64].strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(addr), str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _parse_ipv4(text: str) -> tuple[str, str] | None:
    """Fast path for dotted-quad IPv4 in canonical form; anything else returns None."""
    parts = text.split(".")
    if len(parts) != 4 or not text.isascii():  # int() refuses some non-ASCII digits, e.g. '²'
        return None
    for part in parts:
        if not part.isdigit() or len(part) > 3 or (part[0] == "0" and len(part) > 1):
            return None
        if int(part) > 255:
            return None
    return text, f"{parts[0]}.{parts[1]}.{parts[2]}.0/24"


def _cookies(header: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """The wanted cookies from a Cookie header; tolerant of junk, first value wins."""
    found: dict[str, str] = {}
    for part in header[:8192].split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name in wanted and name not in found:
            found[name] = value.strip().strip('"')
    return found
