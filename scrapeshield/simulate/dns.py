"""The simulated day's DNS: what the search engines' own DNS answers for their crawlers.

Google and Microsoft name every crawler address (``crawl-66-249-66-1.googlebot.com``,
``msnbot-157-55-39-7.search.msn.com``) and resolve the name back to it; nothing else in
the simulated internet has such a name. The simulator verifies crawlers with it exactly
as a deployment does (published ranges where shipped, then forward-confirmed reverse DNS),
looked up inline on event time (``GoodBots(..., inline=True)``).
"""

from __future__ import annotations

from scrapeshield.goodbots.ranges import load
from scrapeshield.simulate.network import BINGBOT_24


def _google(ip: str) -> bool:
    return ip in load(("googlebot",))


def _bing(ip: str) -> bool:
    return ip.rpartition(".")[0] in BINGBOT_24


# (whose address it is, its PTR name prefix, its domain)
_NAMES = ((_google, "crawl", "googlebot.com"), (_bing, "msnbot", "search.msn.com"))


class CrawlerDNS:
    """A resolver (``goodbots.verify.Resolver``) with the crawlers' reverse and forward names."""

    def reverse(self, ip: str) -> list[str]:
        for owns, prefix, domain in _NAMES:
            if owns(ip):
                return [f"{prefix}-{ip.replace('.', '-')}.{domain}."]
        return []

    def forward(self, name: str) -> list[str]:
        for _, prefix, domain in _NAMES:
            label, dot, rest = name.rstrip(".").partition(".")
            if dot and rest == domain and label.startswith(prefix + "-"):
                ip = label[len(prefix) + 1 :].replace("-", ".")
                return [ip] if self.reverse(ip) else []
        return []
