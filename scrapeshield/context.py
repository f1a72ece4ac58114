"""Stage 1: a raw request (ASGI scope, WSGI environ, log line) → RequestContext.

Resolves the client IP through trusted proxies only, maps the path to a route
and the personal record it exposes, and derives the identity keys (account,
session, token, fingerprint). Secrets (cookies, tokens) are kept only as hashes.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Final, cast, final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.tokens import TokenVerifier
from scrapeshield.types import RequestContext, tuple_new

if TYPE_CHECKING:
    from mypy_extensions import i64  # machine integers where compiled; plain ints otherwise

# Final: the compiled build (scripts/compile.py) then reads them as constants, not module globals.
MAX_VALUE: Final = 1024  # longest header value kept; longer ones are truncated
MAX_HEADERS: Final = 128  # headers kept per request; the rest are ignored
MAX_PATH: Final = 2048
MAX_QUERY: Final = 512
_CACHE_MAX: Final = 200_000
# The class as a constant (compiled: a C global, not a lookup in the module's dict per use).
_CONTEXT: Final = RequestContext
PASS_COOKIE: Final = "__scrapeshield_pass"  # actions.challenge.PASS_COOKIE, kept here to avoid a cycle
# Headers whose presence varies from one request of the same client to the next.
VOLATILE_HEADERS: Final = frozenset(
    "cookie referer x-forwarded-for x-forwarded-proto x-forwarded-host x-real-ip forwarded "
    "content-length content-type origin cache-control pragma if-none-match if-modified-since "
    "sec-fetch-site sec-fetch-mode sec-fetch-dest sec-fetch-user upgrade-insecure-requests "
    "accept priority authorization range x-requested-with purpose sec-purpose".split()
)
# Fields read from a header's first value, by slot (see ContextBuilder._wanted); the Cookie
# and X-Forwarded-For headers are kept whole instead (every value, in order).
_UA: Final = 0
_REFERER: Final = 1
_HOST: Final = 2
_HINTS: Final = 3
_LANG: Final = 4
_PROTO: Final = 5
_TLS: Final = 6
_H2: Final = 7
_TOKEN: Final = 8
_COOKIE: Final = -1
_FORWARDED: Final = -2
_SHAPES_MAX: Final = 4096  # header-name sequences remembered (nodes of _Shape's trie)
# Headers whose value a trie node remembers from the last request that reached it (see
# _Shape.last): values that repeat from one client to the next (a browser build's own), none
# that is a secret or the client's own (cookies, tokens, addresses, referers).
REPEATED_VALUES: Final = frozenset(
    "host user-agent accept accept-encoding accept-language connection cache-control pragma "
    "dnt te priority upgrade-insecure-requests x-forwarded-proto sec-ch-ua sec-ch-ua-mobile "
    "sec-ch-ua-platform sec-fetch-site sec-fetch-mode sec-fetch-dest sec-fetch-user".split()
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
        self._last_peer = ("", False)  # see _is_trusted
        self._ip_cache: dict[str, str | tuple[str, str] | None] = {}  # see _parse_ip
        self._secret_cache: dict[str, str] = {}  # session/token → hash (only hashes leave here)
        # The header each slot reads (an identity header may name the same one as another).
        self._wanted = ("user-agent", "referer", "host", "sec-ch-ua", "accept-language",
                        "x-forwarded-proto", self._tls_header, self._h2_header, self._token_header)
        self._slot_count = len(self._wanted)
        # The header-name sequences seen so far, as a trie (see _Shape), and how many nodes
        # and fingerprints it holds (both bounded: it starts again when either is full).
        self._root = _Shape(None, "", (), False)
        self._shapes = 0
        self._fps = 0

    # -- entry points -------------------------------------------------------------

    def from_asgi(self, scope: dict[str, object], ts: float) -> RequestContext:
        """The hot path: one pass over the raw ASGI headers."""
        client = scope.get("client")
        peer = client[0] if isinstance(client, (tuple, list)) and client else ""
        raw: Sequence[tuple[bytes, bytes]] = scope.get("headers") or ()  # type: ignore[assignment]
        seen = _Seen(self._slot_count)
        shape = self._root
        # Objects, not tuple[str, str]: compiled, a typed pair is kept unboxed and boxed anew
        # whenever stored, so a remembered pair could not be shared (see _Shape.last).
        pairs: list[object] = []
        for k, v in raw if len(raw) <= MAX_HEADERS else raw[:MAX_HEADERS]:
            # The name the node's first child was reached by, compared before any lookup:
            # nearly every request follows it (a server makes fresh bytes per name, whose
            # hash a dict lookup computes each time).
            if k == shape.first_raw:
                step = shape.first_step
            else:
                step = shape.raw_next.get(k)
            shape = step if step is not None else self._grow_raw(shape, k)
            # The value the last request at this node sent, decoded then, and its pair (one
            # tuple: threads cannot mix two requests' halves): a browser build's headers
            # repeat from one client to the next, and the same text object each time is
            # hashed once, then found by identity by the stages after this one.
            last = shape.last
            if v == last[0]:
                value = last[1]
                pairs.append(last[2])
            else:
                value = (v if len(v) <= MAX_VALUE else v[:MAX_VALUE]).decode("latin-1")
                pair: object = (shape.name, value)
                if shape.repeats:
                    shape.last = (v, value, pair)
                pairs.append(pair)
            if shape.slots:
                seen.fill(shape.slots, value)
        query = scope.get("query_string") or b""
        return self._assemble(
            ts, peer if type(peer) is str else str(peer), _text(scope.get("method"), "GET"),
            _text(scope.get("path"), "/"),
            cast(tuple[tuple[str, str], ...], tuple(pairs)), shape, seen,
            _text(scope.get("scheme"), "http"),
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
        seen = _Seen(self._slot_count)
        shape = self._root
        for name, value in hdrs:
            step = shape.next.get(name)
            shape = step if step is not None else self._grow(shape, name)
            if shape.slots:
                seen.fill(shape.slots, value)
        return self._assemble(ts, peer, method, path, hdrs, shape, seen, scheme, query[:MAX_QUERY])

    def from_environ(
        self, ts: float, peer: str, method: str, path: str, items: Iterable[tuple[object, object]],
        names: dict[object, str], scheme: str = "http",
    ) -> RequestContext | None:
        """``build`` for a WSGI environ's items in one pass (hosts/wsgi.py): ``names`` maps each
        key to its header name ("" for keys that are none). None, for the host to build it the
        long way, when a key is not named yet or a header's value is empty or not text."""
        seen = _Seen(self._slot_count)
        shape = self._root
        pairs: list[tuple[str, str]] = []
        for key, value in items:
            name = names.get(key)
            if name is None:
                return None
            if name and len(pairs) < MAX_HEADERS:
                if type(value) is not str or not value:
                    return None
                if len(value) > MAX_VALUE:
                    value = value[:MAX_VALUE]
                step = shape.next.get(name)
                shape = step if step is not None else self._grow(shape, name)
                pairs.append((name, value))
                if shape.slots:
                    seen.fill(shape.slots, value)
        return self._assemble(ts, peer, method, path, tuple(pairs), shape, seen, scheme)

    def _assemble(
        self,
        ts: float,
        peer: str,
        method: str,
        path: str,
        hdrs: tuple[tuple[str, str], ...],
        shape: _Shape,
        seen: _Seen,
        scheme: str,
        query: str = "",
    ) -> RequestContext:
        first = seen.first
        # Only a trusted peer's forwarding headers count; most requests carry none.
        peer_trusted = bool(self._trusted) and self._is_trusted(peer)
        if peer_trusted:
            ip, network = self._client_address(peer, seen.forwarded)
            tls = (first[_TLS] or "")[:256]
            h2 = (first[_H2] or "")[:256]
            proto = first[_PROTO]
            if proto == "http" or proto == "https":
                scheme = proto
        else:
            ip, network = self._address(peer) or ("0.0.0.0", "0.0.0.0/24")
            tls = h2 = ""
        if len(path) > MAX_PATH:
            path = path[:MAX_PATH]
        route, record = self.policy.route_for(path or "/")
        ua = first[_UA] or ""
        account = session = pass_cookie = ""
        cookie = seen.cookie()
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
        token_raw = first[_TOKEN] or ""
        token = self._hash(token_raw) if token_raw else ""
        if token and self._tokens is not None and not self._tokens.valid(token_raw, token, ts):
            token = ""  # a token the platform did not sign is no token
        return tuple_new(_CONTEXT, (  # (see types.tuple_new)
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
            self._fingerprint(ua, shape, first[_LANG] or "", f"{tls}|{h2}" if h2 else tls),
            tls,
            first[_REFERER] or "",
            pass_cookie,
            route.asset if route is not None else False,
            route.cost if route is not None else 1,
            first[_HOST] or "",
            first[_HINTS],
            shape.names(),
            query,
            h2,
        ))

    # -- header names -------------------------------------------------------------

    def _slots_of(self, name: str) -> tuple[int, ...]:
        """The fields a header fills (its first value), or _COOKIE / _FORWARDED (kept whole)."""
        if name == "cookie":
            return (_COOKIE,)
        if name == "x-forwarded-for":
            return (_FORWARDED,)
        return tuple([slot for slot, wanted in enumerate(self._wanted) if wanted == name])

    def _grow(self, shape: _Shape, name: str) -> _Shape:
        """The node after ``shape`` for a header name not seen there before."""
        step = _Shape(shape, name, self._slots_of(name), name not in VOLATILE_HEADERS)
        if self._remember():
            shape.next[name] = step
        return step

    def _grow_raw(self, shape: _Shape, raw: bytes) -> _Shape:
        """``_grow`` for a raw ASGI name: decoded once, then found as bytes."""
        name = raw.decode("latin-1")
        step = shape.next.get(name)
        if step is None:
            step = self._grow(shape, name)
        if shape.next.get(name) is step:  # kept (not when the trie just started again)
            shape.raw_next[raw] = step
            if shape.first_step is None:  # the first one kept is tried first (see from_asgi)
                shape.first_step = step
                shape.first_raw = raw
        return step

    def _remember(self) -> bool:
        """Whether one more node fits; when the trie is full (header names are the client's
        to choose), it starts again from an empty root and this request's nodes are kept
        by nobody."""
        if self._shapes >= _SHAPES_MAX:
            self._restart()
            return False
        self._shapes += 1
        return True

    def _restart(self) -> None:
        self._root = _Shape(None, "", (), False)
        self._shapes = 0
        self._fps = 0

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
        # The last peer and its answer, as one tuple (threads cannot mix two halves): a
        # server hands every request of a kept-alive connection the same address object.
        last = self._last_peer
        if last[0] is peer:
            return last[1]
        known = self._judge_peer(peer)
        self._last_peer = (peer, known)
        return known

    def _judge_peer(self, peer: str) -> bool:
        number = ipv4_number(peer)
        if number >= 0:  # nearly every address: integer range checks, nothing cached
            return self._in_trusted_v4(number)
        known = self._trust_cache.get(peer)
        if known is None:
            parsed = self._parse_ip(peer)
            known = False
            if parsed is not None:
                text = parsed[0]
                if ":" not in text:
                    known = self._in_trusted_v4(ipv4_number(text))
                else:
                    addr = ipaddress.ip_address(text)
                    known = any(addr in net for net in self._trusted)
            if len(self._trust_cache) >= _CACHE_MAX:
                self._trust_cache.clear()
            self._trust_cache[peer] = known
        return known

    def _in_trusted_v4(self, number: int) -> bool:
        for low, high in self._trusted_v4:
            if low <= number <= high:
                return True
        return False

    def _client_address(self, peer: str, forwarded: list[str] | None) -> tuple[str, str]:
        """The rightmost X-Forwarded-For entry not added by a trusted proxy, else the peer."""
        parsed: tuple[str, str] | None = None
        if forwarded is None:
            forwarded = []
        elif len(forwarded) == 1 and "," not in forwarded[0]:  # one hop (the usual): no split
            text = forwarded[0].strip()
            number = ipv4_number(text)
            if number >= 0 and not self._in_trusted_v4(number):
                return text, _network_v4(text)
        if forwarded:
            hops = forwarded[0].split(",") if len(forwarded) == 1 else ",".join(forwarded).split(",")
            for hop in reversed(hops[-32:]):
                text = hop.strip()
                number = ipv4_number(text)
                if number >= 0:  # canonical IPv4 (nearly all): parsed once, checked as a number
                    parsed = (text, _network_v4(text))
                    if not self._in_trusted_v4(number):
                        break
                    continue
                candidate = self._parse_ip(text)
                if candidate is None:
                    break  # malformed entries come from the untrusted side: stop here
                parsed = candidate
                if not self._is_trusted(candidate[0]):
                    break
        if parsed is None:  # no usable entry: the peer itself
            parsed = self._address(peer) or ("0.0.0.0", "0.0.0.0/24")
        return parsed

    def _address(self, text: str) -> tuple[str, str] | None:
        """(canonical address, its /24 or /48 network), or None when ``text`` is no address."""
        if ipv4_number(text) >= 0:  # canonical IPv4 (nearly all): faster parsed than looked up
            return text, _network_v4(text)
        return self._parse_ip(text)

    def _parse_ip(self, text: str) -> tuple[str, str] | None:
        cached = self._ip_cache.get(text, False)
        if cached is not False:
            if type(cached) is str:
                return text, cached
            return cached  # type: ignore[return-value]
        result = _parse_any_ip(text)
        if len(self._ip_cache) >= _CACHE_MAX:
            self._ip_cache.clear()
        # An address already in canonical form (nearly all) is cached as its network alone: a
        # dict of strings is never tracked by the garbage collector, one of tuples is re-tracked
        # at each insertion and then walked whole by the next collections.
        self._ip_cache[text] = result[1] if result is not None and result[0] == text else result
        return result

    def _fingerprint(self, ua: str, shape: _Shape, lang: str, tls: str) -> str:
        """A client's claimed identity: UA, header names in order, language, TLS: the hash
        of ``"\x1f".join([ua, lang, tls, *stable names])``, cached per header-name sequence,
        then per user-agent (the detectors look it up too: its hash is computed once, here),
        under the short rest of that text."""
        # Keyed by text (not tuples): a dict of strings stays untracked by the GC.
        rest = f"{lang}\x1f{tls}"
        by_ua = shape.fps.get(ua)
        if by_ua is None:
            by_ua = {}
            shape.fps[ua] = by_ua
        else:
            fp = by_ua.get(rest)
            if fp is not None:
                return fp
        fp = short_hash(f"{ua}\x1f{rest}{shape.stable_tail()}")
        if self._fps >= _CACHE_MAX:
            self._restart()
        self._fps += 1
        by_ua[rest] = fp
        return fp


@final
class _Shape:
    """The header names of a request up to one header: a node of a trie whose edges are
    names (decoded, and raw as ASGI gives them). A request's sequence is found with one
    lookup per header in a small dict, and what depends on the sequence alone is worked out
    once for it: its names as one tuple (the same object for every request that sends
    them), the part of the fingerprint's text they make, and the fingerprints of the
    clients that send them."""

    def __init__(self, parent: _Shape | None, name: str, slots: tuple[int, ...], stable: bool) -> None:
        self.parent = parent
        self.name = name  # this node's header name ("" at the root)
        # The fields its first value fills (see ContextBuilder._wanted), or _COOKIE /
        # _FORWARDED; whether it belongs in the fingerprint (not one of VOLATILE_HEADERS).
        self.slots = slots
        self.stable = stable
        # Whether its values are remembered (REPEATED_VALUES), and the last one: (raw, text,
        # (name, text)). b"" decodes to "": the first entry is right for any node.
        self.repeats = name in REPEATED_VALUES
        self.last: tuple[bytes, str, object] = (b"", "", (name, ""))
        self.next: dict[str, _Shape] = {}
        self.raw_next: dict[bytes, _Shape] = {}
        # The first raw name kept in raw_next and its node (b"\n" is no header name: none yet).
        self.first_raw = b"\n"
        self.first_step: _Shape | None = None
        self.fps: dict[str, dict[str, str]] = {}  # ua -> "lang\x1ftls" -> fingerprint
        self._names: tuple[str, ...] | None = None
        self._tail = ""

    def names(self) -> tuple[str, ...]:
        """The header names from the first to this one."""
        names = self._names
        if names is None:
            names = self._settle()
        return names

    def stable_tail(self) -> str:
        """``"\x1f" + name`` for each stable name, in order: the fingerprint text's end."""
        if self._names is None:
            self._settle()
        return self._tail

    def _settle(self) -> tuple[str, ...]:
        found: list[str] = []
        stable: list[str] = []
        node: _Shape | None = self
        while node is not None and node.parent is not None:
            found.append(node.name)
            if node.stable:
                stable.append(node.name)
            node = node.parent
        found.reverse()
        stable.reverse()
        self._tail = "".join(["\x1f" + name for name in stable])
        names = tuple(found)
        self._names = names  # (last: a thread that sees it set finds _tail set too)
        return names


@final
class _Seen:
    """What one pass over a request's headers found: each wanted field's first value, and
    the Cookie and X-Forwarded-For values, which may repeat, whole."""

    def __init__(self, slots: int) -> None:
        self.first: list[str | None] = [None] * slots
        # Made on the first such header (most requests carry no cookie, or no forwarding).
        self.cookies: list[str] | None = None
        self.forwarded: list[str] | None = None

    def fill(self, slots: tuple[int, ...], value: str) -> None:
        """A header that fills ``slots`` (see _Shape.slots) came with ``value``."""
        for slot in slots:
            if slot >= 0:
                if self.first[slot] is None:
                    self.first[slot] = value
            elif slot == _COOKIE:
                if self.cookies is None:
                    self.cookies = [value]
                else:
                    self.cookies.append(value)
            elif self.forwarded is None:
                self.forwarded = [value]
            else:
                self.forwarded.append(value)

    def cookie(self) -> str:
        """The Cookie header; several are joined as one."""
        cookies = self.cookies
        if cookies is None:
            return ""
        if len(cookies) == 1:
            return cookies[0]
        cookie = ""
        for value in cookies:
            cookie = f"{cookie}; {value}" if cookie else value
        return cookie


def _text(value: object, default: str) -> str:
    """``str(value or default)`` (compiled, ``str()`` of a string is a generic call)."""
    if type(value) is str:
        return value if value else default
    return str(value or default)


def ipv4_number(text: str) -> int:
    """A dotted-quad IPv4 address in canonical form as a number; -1 for anything else
    (other forms, IPv6, junk: for ``ipaddress`` to judge).

    Machine integers (i64) and an index loop: compiled, about 150 instructions, less than
    a lookup in a cache of addresses (which a new client misses anyway)."""
    size: i64 = len(text)  # (i64: the loop index below is a machine integer too)
    if size > 15 or size < 7:
        return -1
    number: i64 = 0
    octet: i64 = 0
    digits: i64 = 0
    dots: i64 = 0
    for i in range(size):
        code: i64 = ord(text[i])
        if 48 <= code <= 57:
            if digits and not octet:  # a leading zero
                return -1
            octet = octet * 10 + code - 48
            digits += 1
        elif code == 46 and digits and octet <= 255 and dots < 3:  # "."
            number = number * 256 + octet
            octet = 0
            digits = 0
            dots += 1
        else:
            return -1
    if dots != 3 or not digits or octet > 255:
        return -1
    return number * 256 + octet


def _network_v4(text: str) -> str:
    """The /24 of a canonical IPv4 address."""
    end = len(text) - 2  # the last octet has a digit at least
    while ord(text[end]) != 46:  # "." (compiled: ord(s[i]) reads the character in place)
        end -= 1
    return text[:end] + ".0/24"


def _parse_any_ip(text: str) -> tuple[str, str] | None:
    try:
        addr = ipaddress.ip_address(text[:64].strip("[]"))
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    prefix = 24 if addr.version == 4 else 48
    return str(addr), str(ipaddress.ip_network(f"{addr}/{prefix}", strict=False))


def _cookies(header: str, wanted: tuple[str, ...]) -> dict[str, str]:
    """The wanted cookies from a Cookie header; tolerant of junk, first value wins."""
    found: dict[str, str] = {}
    for part in header[:8192].split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name in wanted and name not in found:
            found[name] = value.strip().strip('"')
    return found
