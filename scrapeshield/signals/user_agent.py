"""User-agent classes from the public crawler-user-agents list (monperrus/crawler-user-agents).

The list's tags say what a pattern is (search engine, HTTP library, browser
automation…); everything matched without a telling tag is a crawler. Results are
cached per distinct user-agent string, bounded.
"""

from __future__ import annotations

import re
from typing import Final

import crawleruseragents

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.signals.shared import FP_RECORDS
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal, UAClass

_TAG_CLASSES = (
    ("http-library", UAClass.HTTP_LIBRARY),
    ("browser-automation", UAClass.AUTOMATION),
    ("search-engine", UAClass.SEARCH_ENGINE),
)
_BROWSER = re.compile(r"^Mozilla/5\.0 \(.+\) .*(?:Chrome|Firefox|Safari|Edg|OPR)/\d+")
_CACHE_MAX: Final = 50_000
# Distinct personal records that the clients of one declared automation build (its
# fingerprint: nobody browsing shares it) read within the breadth window before that counts
# apart from the user-agent: link previews and tests read a few; a headless fleet, hundreds.
AUTOMATION_RECORDS: Final = 20


def _compile_list() -> list[tuple[re.Pattern[str], UAClass, str]]:
    entries = []
    for item in crawleruseragents.CRAWLER_USER_AGENTS_DATA:
        tags = set(item.get("tags") or ())
        cls = next((c for tag, c in _TAG_CLASSES if tag in tags), UAClass.CRAWLER)
        entries.append((re.compile(item["pattern"]), cls, str(item["pattern"])))
    return entries


_ENTRIES = _compile_list()
_ANY = re.compile("|".join(f"(?:{p})" for _, _, p in _ENTRIES))
_SIGNALS = {
    UAClass.HTTP_LIBRARY: "ua.http-library",
    UAClass.AUTOMATION: "ua.browser-automation",
    UAClass.CRAWLER: "ua.crawler",
    UAClass.SEARCH_ENGINE: "ua.search-engine-unverified",
    UAClass.EMPTY: "ua.empty",
    UAClass.OTHER: "ua.other",
}


def classify(user_agent: str) -> tuple[UAClass, str]:
    """The class of a user-agent and the list pattern that matched ("" if none)."""
    if not user_agent.strip():
        return UAClass.EMPTY, ""
    if _ANY.search(user_agent) is not None:
        for pattern, cls, text in _ENTRIES:
            if pattern.search(user_agent) is not None:
                return cls, text
    if _BROWSER.match(user_agent) is not None:
        return UAClass.BROWSER, ""
    return UAClass.OTHER, ""


class UserAgentDetector(DetectorBase):
    name = "user_agent"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._weights = policy.weights
        self._reading = policy.weights["ua.automation-reading"]
        self._window = policy.source.detection.campaigns.breadth_window
        self._cache: dict[str, tuple[UAClass, Signal | None]] = {}
        # The last user-agent classified and its answer, as one tuple (read in one step, so
        # threads cannot mix two requests' halves): the engine classifies each request's
        # user-agent twice (before its rules, then as a detector), the second time it is the
        # same string object, answered without hashing it again.
        self._last = ("", self._classified(""))

    def classify(self, user_agent: str) -> tuple[UAClass, Signal | None]:
        last = self._last
        if last[0] is user_agent:
            return last[1]
        hit = self._classified(user_agent)
        self._last = (user_agent, hit)
        return hit

    def _classified(self, user_agent: str) -> tuple[UAClass, Signal | None]:
        hit = self._cache.get(user_agent)
        if hit is None:
            cls, pattern = classify(user_agent)
            signal_name = _SIGNALS.get(cls)
            signal = None
            if signal_name is not None:
                shown = user_agent[:80] or "(none)"
                why = f"user-agent {shown!r} is {cls.value}"
                if pattern:
                    why += f" (crawler list pattern {pattern!r})"
                signal = Signal(signal_name, self._weights[signal_name], why)
            hit = (cls, signal)
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[user_agent] = hit
        return hit

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        cls, signal = self.classify(ctx.user_agent)
        if signal is not None:
            out.append(signal)
        # A solved challenge answers that a declared automation browser is a browser
        # (decide.honour_pass sets its user-agent aside); it does not make its build reading
        # people's records in bulk what a preview or a test does. This part is not set aside.
        # Counted per fingerprint (signals.shared), not per address: a NAT's address carries
        # people's reads too.
        shared = memory.shared
        if cls is UAClass.AUTOMATION and ctx.record and len(shared) > FP_RECORDS \
                and shared[FP_RECORDS] >= AUTOMATION_RECORDS:
            out.append(Signal("ua.automation-reading", self._reading,
                              f"declares browser automation; its build read {int(shared[FP_RECORDS])} "
                              f"personal records in {self._window:g}s"))
