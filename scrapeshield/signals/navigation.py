"""Navigation: what a client reads and how it gets there.

- breadth vs depth: people open a profile, read it, go back to the feed or a list;
  a scraper reads profile after profile and nothing else;
- the referrer chain: people reach a profile from a page of the site (a link they
  clicked); a scraper fetches them straight, record after record;
- pagination depth: people rarely go past the third page of someone's followers;
- not-found share: guessing ids or paths hits pages that do not exist (routes the policy
  does not know, and 4xx answers the host reports after the response);
- few assets: a claimed browser that loads far fewer assets than pages.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.signals.shared import from_site
from scrapeshield.state.base import ClientMemory, path_code
from scrapeshield.types import RequestContext, Signal

MIN_READS: Final = 30  # record reads before breadth means anything
BREADTH: Final = 8  # record reads per other page that count as "nothing but profiles"
MIN_COLD: Final = 12  # record reads before the referrer chain means anything
COLD_SHARE: Final = 0.9
DEEP: Final = 8  # pages of one list in a row
MIN_MISSES: Final = 20
MISS_SHARE: Final = 0.3
MIN_PAGES: Final = 30
ASSETS_PER_PAGE: Final = 0.1
# Indices into ClientMemory.values (see state.base).
_REQUESTS: Final = 2
_PAGES: Final = 3
_ASSETS: Final = 4
_READS: Final = 16
_OTHER: Final = 17
_COLD: Final = 18
_LIST: Final = 19
_DEPTH: Final = 20
_UNKNOWN: Final = 21
_ERRORS: Final = 22


class NavigationDetector(DetectorBase):
    name = "navigation"

    def __init__(self, policy: CompiledPolicy) -> None:
        w = policy.weights
        self._breadth = w["behaviour.breadth"]
        self._cold = w["behaviour.no-referer-chain"]
        self._deep = w["behaviour.deep-pagination"]
        self._missing = w["behaviour.not-found"]
        self._few = w["behaviour.few-assets"]
        self._lists = policy.paginated_routes
        self._mapped = bool(policy.routes)

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        if ctx.is_asset:
            return
        v = memory.values  # (compiled, ``v[i] += 1`` would be a generic Python add: spelled out)
        if ctx.record:
            v[_READS] = v[_READS] + 1.0
            if not from_site(ctx):
                v[_COLD] = v[_COLD] + 1.0
        elif ctx.route:
            v[_OTHER] = v[_OTHER] + 1.0
        elif self._mapped:  # with no route map, "no route" says nothing
            v[_UNKNOWN] = v[_UNKNOWN] + 1.0
        if ctx.route in self._lists:
            code = path_code(ctx.path)
            if code == v[_LIST]:
                v[_DEPTH] = v[_DEPTH] + 1.0
            else:
                v[_LIST], v[_DEPTH] = code, 1.0
            if v[_DEPTH] >= DEEP:
                out.append(Signal("behaviour.deep-pagination", self._deep,
                                  f"read {int(v[_DEPTH])} pages of one list in a row"))
        if ctx.token:  # an API client (the platform's app) reads records directly by design
            return
        reads = v[_READS]
        if reads >= MIN_READS and reads > BREADTH * (v[_OTHER] + 1):
            out.append(Signal("behaviour.breadth", self._breadth,
                              f"read {int(reads)} profiles and {int(v[_OTHER])} other pages"))
        if reads >= MIN_COLD and v[_COLD] >= COLD_SHARE * reads:
            out.append(Signal("behaviour.no-referer-chain", self._cold,
                              f"reached {int(v[_COLD])} of {int(reads)} profiles from outside the site"))
        misses = v[_UNKNOWN] + v[_ERRORS]
        if misses >= MIN_MISSES and misses > MISS_SHARE * v[_REQUESTS]:
            out.append(Signal("behaviour.not-found", self._missing,
                              f"{int(misses)} of {int(v[_REQUESTS])} requests found nothing"))
        pages = v[_PAGES]
        if pages >= MIN_PAGES and v[_ASSETS] and v[_ASSETS] < ASSETS_PER_PAGE * pages \
                and ctx.user_agent.startswith("Mozilla/5.0"):
            out.append(Signal("behaviour.few-assets", self._few,
                              f"claims a browser; {int(v[_ASSETS])} assets for {int(pages)} pages"))
