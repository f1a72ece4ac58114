"""TLS and HTTP/2 fingerprints (from a trusted edge) against the browser the user-agent claims.

An HTTP library can copy Chrome's user-agent and headers in a line of code; its TLS
handshake and HTTP/2 settings come from its own stack. JA4's first part names the TLS
version, cipher and extension counts and the ALPN: every current browser offers h2, and
each family has its own counts. Akamai's HTTP/2 fingerprint ends in the order of the
pseudo-headers, which each browser family fixes (Chromium m,a,s,p; Firefox m,p,a,s;
Safari m,s,p,a or m,s,a,p). A fingerprint that names another family than the claim, or a
stack no browser uses, is a mismatch. Unknown fingerprints say nothing (new versions).
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.signals.headers import browser_family
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

# JA4 "a" parts (protocol, TLS version, SNI, cipher count, extension count, ALPN) seen from
# each family's current releases, and from stacks no browser uses.
JA4_FAMILIES: dict[str, frozenset[str]] = {
    "chromium": frozenset({"t13d1516h2", "t13d1517h2", "t13d1515h2", "q13d0312h3"}),
    "firefox": frozenset({"t13d1715h2", "t13d1716h2", "t13d1717h2", "q13d0313h3"}),
    "safari": frozenset({"t13d2014h2", "t13d2013h2", "t13d2015h2"}),
}
H2_ORDER = {"chromium": ("m,a,s,p",), "firefox": ("m,p,a,s",), "safari": ("m,s,p,a", "m,s,a,p")}
_CACHE_MAX: Final = 20_000


class TlsDetector(DetectorBase):
    name = "tls"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._weight = policy.weights["tls.mismatch"]
        self._cache: dict[tuple[str, str, str], Signal | None] = {}

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        if not ctx.tls_fingerprint and not ctx.h2_fingerprint:
            return
        key = (ctx.user_agent, ctx.tls_fingerprint, ctx.h2_fingerprint)
        if key in self._cache:
            found = self._cache[key]
        else:
            found = self._check(*key)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = found
        if found is not None:
            out.append(found)

    def _check(self, ua: str, ja4: str, h2: str) -> Signal | None:
        family, version = browser_family(ua)
        if not family:
            return None
        why = _ja4_mismatch(family, ja4) or _h2_mismatch(family, h2)
        return None if not why else Signal("tls.mismatch", self._weight, f"claims {family} {version}: {why}")


def _ja4_mismatch(family: str, ja4: str) -> str:
    head = ja4.split("_", 1)[0].lower()
    if len(head) != 10:
        return ""
    if head[-2:] not in ("h2", "h3"):
        return f"JA4 {head} offers no HTTP/2 (ALPN {head[-2:]}), which every browser does"
    for other, known in JA4_FAMILIES.items():
        if head in known and other != family:
            return f"JA4 {head} is {other}'s TLS stack"
    return ""


def _h2_mismatch(family: str, h2: str) -> str:
    order = h2.rsplit("|", 1)[-1].strip().lower() if "|" in h2 else ""
    if not order or family not in H2_ORDER or order in H2_ORDER[family]:
        return ""
    return f"HTTP/2 pseudo-header order {order} is not {family}'s"
