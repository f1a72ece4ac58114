"""A client's activity counts, and the first behaviour signal built on them.

A real browser fetches a page's stylesheet, script and images at least once; a
script that claims to be a browser but reads page after page without a single
asset is not one.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

MIN_PAGES: Final = 8  # pages read before the absence of assets means anything


class ActivityDetector(DetectorBase):
    name = "activity"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._weight = policy.weights["behaviour.no-assets"]

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        memory.requests += 1
        memory.last_seen = ctx.ts
        if ctx.is_asset:
            memory.assets += 1
            return
        memory.pages += 1
        if (
            memory.pages >= MIN_PAGES
            and not memory.assets
            and ctx.user_agent.startswith("Mozilla/5.0")
        ):
            out.append(
                Signal(
                    "behaviour.no-assets",
                    self._weight,
                    f"claims a browser but fetched {memory.pages} pages and no asset",
                )
            )
