"""Every signal a detector can raise, with its default weight and meaning.

Policies may override weights by name (``weights:``); a name not listed here is
a policy error, so a typo cannot silently disable a detector.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SignalSpec:
    default_weight: float
    meaning: str


SIGNALS: dict[str, SignalSpec] = {
    "ua.http-library": SignalSpec(60, "user-agent of an HTTP library or command-line tool"),
    "ua.browser-automation": SignalSpec(60, "user-agent of a headless or automated browser"),
    "ua.crawler": SignalSpec(40, "user-agent on a public list of crawlers and scrapers"),
    "ua.search-engine-unverified": SignalSpec(
        40, "claims to be a search-engine crawler (not verified by the user-agent alone)"
    ),
    "ua.empty": SignalSpec(50, "no user-agent at all"),
    "ua.other": SignalSpec(10, "user-agent of no known browser"),
    "headers.missing-browser-headers": SignalSpec(
        35, "claims a browser but lacks headers that browser always sends"
    ),
    "headers.client-hints-mismatch": SignalSpec(
        30, "client hints contradict the claimed browser"
    ),
    "headers.order": SignalSpec(15, "header order unlike the claimed browser"),
    "headers.no-accept-language": SignalSpec(15, "no Accept-Language header"),
    "enumeration.sequential": SignalSpec(
        45, "reads personal records in sequential id order"
    ),
    "behaviour.no-assets": SignalSpec(
        25, "claims a browser but has fetched many pages and not one asset"
    ),
    "honeypot.hit": SignalSpec(100, "requested a trap that no human can see"),
}
