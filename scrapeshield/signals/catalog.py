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
    # The decoy band on its own: with a valid pass (which sets the user-agent aside) records
    # get decoys, not real data; without one, it adds to ua.browser-automation's block.
    "ua.automation-reading": SignalSpec(
        40, "a declared automation build reads more personal records than previews or tests do"
    ),
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
    # Behaviour over time (signals.pacing, signals.navigation, signals.search).
    "behaviour.regular-pace": SignalSpec(
        30, "pages requested at intervals too regular for a person"
    ),
    "behaviour.never-sleeps": SignalSpec(20, "active in nearly every hour of the last day"),
    "behaviour.breadth": SignalSpec(
        30, "reads many different profiles and hardly any other page"
    ),
    "behaviour.no-referer-chain": SignalSpec(
        25, "reaches profile after profile without coming from a page of the site"
    ),
    "behaviour.deep-pagination": SignalSpec(25, "pages deep into one follower list"),
    "behaviour.not-found": SignalSpec(25, "a large share of requests for pages that do not exist"),
    "behaviour.few-assets": SignalSpec(
        15, "claims a browser but loads far fewer assets than pages"
    ),
    "enumeration.strided": SignalSpec(40, "reads records at one constant id stride"),
    "enumeration.dictionary-search": SignalSpec(
        45, "searches like a dictionary walk: sorted or short prefix queries, in bulk"
    ),
    # Campaigns: counters shared by clients with one trait (signals.campaign).
    "campaign.fingerprint": SignalSpec(
        55, "one of many asset-less clients with this fingerprint reading profiles cold"
    ),
    "campaign.fingerprint-breadth": SignalSpec(
        45, "one of a fleet of clients with this fingerprint, each reading many profiles"
    ),
    "campaign.network": SignalSpec(
        30, "one of many asset-less clients in this /24 reading profiles cold"
    ),
    # Accounts (signals.accounts).
    "accounts.many-networks": SignalSpec(40, "one account used from many networks in a short time"),
    "accounts.new-account-lookups": SignalSpec(
        30, "a new account that does little but look other users up"
    ),
    # Good bots and fingerprints (signals.goodbots, signals.tls).
    "goodbot.verified": SignalSpec(
        -40, "search-engine crawler verified by published ranges and reverse DNS"
    ),
    "goodbot.spoofed": SignalSpec(
        50, "claims a search-engine crawler from an address that crawler does not use"
    ),
    "network.hosting": SignalSpec(10, "address in a cloud or hosting provider's published ranges"),
    "tls.mismatch": SignalSpec(
        45, "TLS or HTTP/2 fingerprint of a client other than the browser it claims"
    ),
}

# What a solved challenge answers, set aside for a client holding a valid pass
# (``decide.honour_pass``): that a declared automation user-agent runs a real browser, and,
# below the block threshold, that a request unlike its claimed browser (headers, TLS) comes
# from one. Nothing about behaviour, campaigns, traps or enumeration is ever answered by it.
ANSWERED_BY_PASS = frozenset({"ua.browser-automation"})
SHAPE_ANSWERED_BY_PASS = frozenset({
    "headers.missing-browser-headers", "headers.client-hints-mismatch", "headers.order",
    "headers.no-accept-language", "tls.mismatch",
})
