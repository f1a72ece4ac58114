"""Dictionary search: harvesting users through the search endpoint.

A harvester walks a dictionary: queries in sorted order ("aa", "ab", "ac"…), or short
prefixes that each return a page of users, in bulk. People search for someone by name
a few times, in no order.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import unquote_plus

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

MIN_SEARCHES: Final = 15
SORTED_SHARE: Final = 0.8  # share of searches sorting after the previous one
SHORT_SHARE: Final = 0.8  # share of searches of at most SHORT characters
SHORT: Final = 3
PREFIX: Final = 6  # characters of a query that its sort code keeps
# Indices into ClientMemory.values (see state.base).
_SEARCHES: Final = 23
_SORTED: Final = 24
_LAST: Final = 25
_SHORT: Final = 26


def query_text(query: str) -> str:
    """The ``q`` parameter of a query string, decoded ("" when absent)."""
    for part in query.split("&"):
        if part.startswith("q="):
            return unquote_plus(part[2:], errors="replace").strip().casefold()
    return ""


def sort_code(text: str) -> float:
    """A number that sorts like the text's first PREFIX characters (exact in a float)."""
    code = 0
    for ch in text[:PREFIX].ljust(PREFIX, "\0"):
        code = code * 257 + min(ord(ch), 256)
    return float(code)


class SearchDetector(DetectorBase):
    name = "search"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._weight = policy.weights["enumeration.dictionary-search"]
        self._routes = policy.search_routes

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        if ctx.route not in self._routes:
            return
        text = query_text(ctx.query)
        if not text:
            return
        v = memory.values
        code = sort_code(text)
        if v[_SEARCHES] and code > v[_LAST]:
            v[_SORTED] = v[_SORTED] + 1.0
        v[_LAST] = code
        v[_SEARCHES] = v[_SEARCHES] + 1.0
        if len(text) <= SHORT:
            v[_SHORT] = v[_SHORT] + 1.0
        searches = v[_SEARCHES]
        if searches < MIN_SEARCHES:
            return
        if v[_SORTED] >= SORTED_SHARE * (searches - 1):
            why = f"{int(v[_SORTED]) + 1} of {int(searches)} searches in sorted order"
        elif v[_SHORT] >= SHORT_SHARE * searches:
            why = f"{int(v[_SHORT])} of {int(searches)} searches of {SHORT} characters or fewer"
        else:
            return
        out.append(Signal("enumeration.dictionary-search", self._weight, why))
