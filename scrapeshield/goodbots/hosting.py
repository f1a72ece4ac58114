"""Cloud and hosting networks: a weak signal, never a verdict.

Scrapers rent servers; so do VPNs, corporate proxies and some real people's privacy tools.
An address in a provider's published ranges adds a little to the score, nothing more.
"""

from __future__ import annotations

from pathlib import Path

from scrapeshield.goodbots.ranges import RangeSet, load

PROVIDERS = ("aws", "gcp", "oci", "linode", "vultr", "alibaba", "tencent", "hetzner", "ovh",
             "leaseweb", "contabo", "scaleway", "m247", "ibmcloud", "flyio", "render")
_CACHE_MAX = 200_000


class Hosting:
    """Whether an address is in a hosting provider's ranges (cached per address)."""

    def __init__(self, ranges_dir: Path | None = None) -> None:
        # Loaded now (once per process and directory: ranges.load is cached), not on the
        # first request: a few MB of JSON must not land on somebody's request.
        self._ranges: RangeSet = load(PROVIDERS, ranges_dir)
        self._cache: dict[str, bool] = {}

    def __contains__(self, ip: str) -> bool:
        hit = self._cache.get(ip)
        if hit is None:
            hit = ip in self._ranges
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[ip] = hit
        return hit
