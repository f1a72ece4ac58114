"""Download newer published ranges from the providers (when the machine is online).

Each list is fetched from its provider's own URL, checked (JSON with at least one
network in it) and written atomically to ``<data-dir>/ip-ranges/NAME.json``, where the
loader prefers it over the shipped copy. A failed download keeps what was there.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import httpx

from scrapeshield.goodbots.ranges import load, networks_in

# The providers' published JSON lists (the shipped snapshot's sources).
SOURCES: dict[str, str] = {
    "googlebot": "https://developers.google.com/static/search/apis/ipranges/googlebot.json",
    "googlesc": "https://developers.google.com/static/search/apis/ipranges/special-crawlers.json",
    "googleutf": "https://developers.google.com/static/search/apis/ipranges/user-triggered-fetchers-google.json",
    "user-triggered-fetchers": "https://developers.google.com/static/search/apis/ipranges/user-triggered-fetchers.json",
    "bingbot": "https://www.bing.com/toolbox/bingbot.json",
    "applebot": "https://search.developer.apple.com/applebot.json",
    "aws": "https://ip-ranges.amazonaws.com/ip-ranges.json",
    "gcp": "https://www.gstatic.com/ipranges/cloud.json",
    "oci": "https://docs.oracle.com/en-us/iaas/tools/public_ip_ranges.json",
}
MAX_BYTES = 20_000_000


@dataclass(frozen=True, slots=True)
class Outcome:
    name: str
    ok: bool
    detail: str  # networks written, or why not


def refresh(target: Path, sources: dict[str, str], timeout: float = 30.0) -> list[Outcome]:
    target.mkdir(parents=True, exist_ok=True)
    results = []
    with httpx.Client(timeout=timeout, follow_redirects=True) as client:
        for name, url in sources.items():
            results.append(_one(client, target, name, url))
    load.cache_clear()  # engines built from now on read the new lists
    return results


def _one(client: httpx.Client, target: Path, name: str, url: str) -> Outcome:
    try:
        response = client.get(url)
        response.raise_for_status()
        if len(response.content) > MAX_BYTES:
            return Outcome(name, False, f"larger than {MAX_BYTES} bytes")
        data = json.loads(response.content)
    except (httpx.HTTPError, ValueError) as exc:
        return Outcome(name, False, f"{type(exc).__name__}: {str(exc)[:120]}")
    count = sum(1 for _ in networks_in(data))
    if count == 0:
        return Outcome(name, False, "no address ranges in the answer")
    path = target / f"{name}.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_bytes(response.content)
    os.replace(temporary, path)
    return Outcome(name, True, f"{count} networks")
