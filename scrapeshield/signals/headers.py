"""Header set, order and client hints checked against the browser the user-agent claims.

Browsers are consistent: Chromium sends client hints (``sec-ch-ua``) and
``sec-fetch-*`` to secure origins, puts Accept-Encoding before Accept-Language,
and its hints name the same major version as its user-agent; Firefox orders the
two the other way and sends no client hints. HTTP libraries that borrow a
browser's user-agent rarely get all of that right.
"""

from __future__ import annotations

import re
from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

_CHROMIUM = re.compile(r"(?:Chrome|Chromium|HeadlessChrome)/(\d+)")
_FIREFOX = re.compile(r"Firefox/(\d+)")
_SAFARI = re.compile(r"Version/(\d+)[.\d]* (?:Mobile/\S+ )?Safari/")
_HINT_VERSION = re.compile(r'"([^"]*)";v="(\d+)"')
_CACHE_MAX: Final = 50_000
# What the checks found for one user-agent and header sequence: (secure, client hints, signals).
_Found = tuple[bool, str | None, tuple[Signal, ...]]


def browser_family(user_agent: str) -> tuple[str, int]:
    """("chromium" | "firefox" | "safari" | "", major version) claimed by a user-agent."""
    if not user_agent.startswith("Mozilla/5.0"):
        return "", 0
    m = _CHROMIUM.search(user_agent)
    if m is not None:
        return "chromium", int(m.group(1))
    m = _FIREFOX.search(user_agent)
    if m is not None:
        return "firefox", int(m.group(1))
    m = _SAFARI.search(user_agent)
    if m is not None:
        return "safari", int(m.group(1))
    return "", 0


class HeaderConsistencyDetector(DetectorBase):
    name = "headers"

    def __init__(self, policy: CompiledPolicy) -> None:
        w = policy.weights
        self._missing = w["headers.missing-browser-headers"]
        self._hints = w["headers.client-hints-mismatch"]
        self._order = w["headers.order"]
        self._no_lang = w["headers.no-accept-language"]
        # user-agent → header names → what was found for them, per (secure, client hints).
        # Nested, not keyed by one 4-tuple: a tuple's hash is computed at every lookup (the
        # names' too), where the user-agent's is cached in the string (the context stage
        # hashed it) and the names are one tuple per header sequence, found by identity.
        self._cache: dict[str, dict[tuple[str, ...], list[_Found]]] = {}
        self._size = 0  # entries in all of it (bounded by _CACHE_MAX)

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        host = ctx.host  # (one literal at a time: compiled, a tuple of them is built per call)
        secure = ctx.scheme == "https" or host.startswith("localhost") or host.startswith("127.") \
            or host.startswith("[::1]")
        hints = ctx.client_hints
        names = ctx.header_names
        ua = ctx.user_agent
        by_names = self._cache.get(ua)
        known = by_names.get(names) if by_names is not None else None
        if known is not None:
            for entry in known:
                seen = entry[1]
                if entry[0] == secure and (seen is hints or seen == hints):
                    out.extend(entry[2])
                    return
        found = tuple(self._check(ua, names, secure, hints))
        if self._size >= _CACHE_MAX:
            self._cache.clear()
            self._size = 0
            by_names = known = None
        if by_names is None:
            by_names = {}
            self._cache[ua] = by_names
        if known is None:
            known = []
            by_names[names] = known
        known.append((secure, hints, found))
        self._size += 1
        out.extend(found)

    def _check(
        self, ua: str, names: tuple[str, ...], secure: bool, hints: str | None
    ) -> list[Signal]:
        found: list[Signal] = []
        present = set(names)
        family, version = browser_family(ua)
        if "accept-language" not in present:
            found.append(
                Signal("headers.no-accept-language", self._no_lang, "no Accept-Language header")
            )
        if not family:
            return found
        expected = {"accept", "accept-encoding"}
        if secure and (family == "chromium" and version >= 90 or family == "firefox" and version >= 90):
            expected.add("sec-fetch-mode")
        if secure and family == "chromium" and version >= 90:
            expected.add("sec-ch-ua")
        missing = sorted(expected - present)
        if missing:
            found.append(
                Signal(
                    "headers.missing-browser-headers",
                    self._missing,
                    f"claims {family} {version} but sends no {', '.join(missing)}",
                )
            )
        if hints is not None:
            mismatch = _hints_mismatch(family, version, hints)
            if mismatch:
                found.append(Signal("headers.client-hints-mismatch", self._hints, mismatch))
        if "accept-encoding" in present and "accept-language" in present:
            enc, lang = names.index("accept-encoding"), names.index("accept-language")
            if family == "chromium" and enc > lang or family == "firefox" and lang > enc:
                found.append(
                    Signal(
                        "headers.order",
                        self._order,
                        f"Accept-Encoding/Accept-Language order unlike {family}",
                    )
                )
        return found


def _hints_mismatch(family: str, version: int, hints: str) -> str:
    if family != "chromium":
        return f"sends Chromium client hints but claims {family}"
    brands = dict(_HINT_VERSION.findall(hints[:512]))
    versions = {int(v) for b, v in brands.items() if "Chrom" in b or "Edge" in b or "Opera" in b}
    if versions and version not in versions:
        return f"user-agent says version {version}, client hints say {sorted(versions)}"
    return ""


