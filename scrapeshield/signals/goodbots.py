"""Claims of being a search engine, checked against the address (``scrapeshield.goodbots``).

A verified crawler's class becomes ``verified-search-engine`` (so a policy rule can admit
it) and its unverified-claim weight is cancelled; a claim from an address the crawler does
not use adds ``goodbot.spoofed`` (a spoofed Googlebot ends up with more than a plain
scraper, never less). Bare record reads (``signals.shared``) from hosting networks add the
weak ``network.hosting``. A verified crawler's behaviour and campaign findings are set aside
(``without_crawler_findings``, after the detectors ran).
Run by the engine before the rules, since rules may match on the verified class.
"""

from __future__ import annotations

from scrapeshield.goodbots.hosting import Hosting
from scrapeshield.goodbots.verify import GoodBots, Status
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.catalog import SIGNALS
from scrapeshield.signals.shared import is_bare
from scrapeshield.types import RequestContext, Signal, UAClass

VERIFIED_CLASS = "verified-search-engine"
# What a verified crawler does by its nature: reads many pages, bare, without assets, at a
# steady pace, day and night, from a fleet sharing one fingerprint, with no browser headers.
# Those findings describe a crawler doing its job, not a scraper, and are set aside for it.
# Traps, enumeration, the user-agent checks and every limit (its crawl budget) still count.
CRAWLER_EXEMPT = frozenset(
    name for name in SIGNALS
    if name.startswith(("behaviour.", "campaign.", "headers.")) or name in ("tls.mismatch", "network.hosting")
)


def without_crawler_findings(signals: list[Signal]) -> list[Signal]:
    """A verified crawler's ``signals`` without what ``CRAWLER_EXEMPT`` names."""
    return [s for s in signals if s.name not in CRAWLER_EXEMPT]


class AddressChecks:
    def __init__(self, policy: CompiledPolicy, bots: GoodBots, hosting: Hosting) -> None:
        w = policy.weights
        self._bots = bots if policy.source.detection.verify_search_engines else None
        self._hosting = hosting
        self._verified = w["goodbot.verified"]
        self._spoofed = w["goodbot.spoofed"]
        self._hosted = Signal("network.hosting", w["network.hosting"],
                              "address in a cloud or hosting provider's published ranges")
        self._weighs_hosting = w["network.hosting"] != 0

    def inspect(self, ctx: RequestContext, ua_class: UAClass, out: list[Signal]) -> str:
        """The user-agent class as rules see it; appends what the address says."""
        if ctx.record and self._weighs_hosting and is_bare(ctx) and ctx.ip in self._hosting:
            out.append(self._hosted)
        if ua_class is not UAClass.SEARCH_ENGINE or self._bots is None:
            # A StrEnum is its value: equal to it and hashed as it (str's own methods), so a
            # rule's set of class names finds it as it is (str() would copy it each request).
            return ua_class
        bot = self._bots.bot_for(ctx.user_agent)
        if bot is None:
            return ua_class
        status = self._bots.status(ctx.ip, bot, ctx.ts)
        if status is Status.VERIFIED:
            out.append(Signal("goodbot.verified", self._verified,
                              f"{bot.name} verified: published ranges and reverse DNS agree"))
            return VERIFIED_CLASS
        if status is Status.SPOOFED:
            out.append(Signal("goodbot.spoofed", self._spoofed,
                              f"claims {bot.name} from an address {bot.name} does not use"))
        return ua_class
