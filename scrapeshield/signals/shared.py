"""Counters shared by every client with one trait, updated in the decision's state round trip.

Per-address memory cannot see a scraper that spends one to five requests per address.
What such a scraper's addresses share is a trait: the client fingerprint (user-agent,
header set and order, language, TLS/HTTP2 fingerprints from a trusted edge), the /24
network, and for signed-in scraping the account. The engine counts, under each trait,
what the campaign detectors need, in the same state call as the limits (so Redis still
answers a decision in one round trip), and hands the usages to the detectors as
``ClientMemory.shared``:

``shared`` = ``(bare, fp_bare, fp_assets, net_bare, net_assets, networks, reads_30d,
records_new, fp_records, fp_clients, entered)``, zeros where the request touched no such key:

- per fingerprint: distinct records read bare and asset loads, and per /24 network the
  distinct records read bare (no asset ratio: that would cost a key per asset), within
  ``detection.campaigns.window`` (``bare`` is 1.0 when this request is a bare read). A bare
  read that follows a link from another site (a search engine's results) is counted under
  the fingerprint *and that entry*, apart from direct reads: a fleet's requests share how
  they arrive as much as how they look, so people landing from a search engine are not
  judged by a fleet that sends no referer (and a fleet that forges one heats that count);
- per account, for its bare record reads (signed-in browsing from the site's own pages
  costs nothing extra): the distinct /24 networks it used within
  ``networks_window``, its record reads over 30 days, and the distinct records it read
  within ``new_account_window``;
- per fingerprint, for record pages (routes with an HTML field map) and bare reads: the
  distinct records its clients read, and for pages the distinct addresses that read
  them, within ``breadth_window`` (a fleet of browsers on
  rotating addresses reads far more per address than the people who share a fingerprint).

Other requests touch no shared key (most page views of people cost nothing extra).
"""

from __future__ import annotations

import functools
import ipaddress
from collections.abc import Callable
from typing import Final

from scrapeshield.context import ipv4_number
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.base import CounterSpec, KeyUpdate
from scrapeshield.types import RequestContext

ASSET: Final = 1  # layouts: an asset, or a record read (on a page, bare, by an account, or not)
READ: Final = 2
BARE: Final = 4
ACCOUNT: Final = 8
PAGE: Final = 16
ENTERED: Final = 32  # a bare read following another site's link (counted apart from direct ones)
MONTH: Final = 30 * 86400.0
_BIG: Final = 10_000_000  # request counters here are read, never limited


def from_site(ctx: RequestContext) -> bool:
    """Whether the request's referer is a page of this site (same host)."""
    referer, host = ctx.referer, ctx.host
    if not referer or not host:
        return False
    start = referer.find("//") + 2
    if start < 2 or not referer.startswith(host, start):
        return False
    end = start + len(host)
    return len(referer) == end or referer[end] in "/?#"


def from_elsewhere(ctx: RequestContext) -> bool:
    """Whether the request follows a link on another site (a referer that is not this site)."""
    return bool(ctx.referer) and not from_site(ctx)


def is_bare(ctx: RequestContext) -> bool:
    """A record read that did not come from the site, holds no pass and no API token."""
    return bool(ctx.record) and not ctx.pass_cookie and not ctx.token and not from_site(ctx)


_NO_NETWORK: KeyUpdate = ("trait-net:private", (), (), "")  # counts nothing, answers ()


# IANA's special-purpose IPv4 blocks, as Python's ipaddress judges ``is_global`` for a
# network: an IPv4 network is public unless it lies wholly inside one. Integer bounds, because a
# rotating fleet brings a new /24 on most requests and an ipaddress object costs ~4 µs.
_PRIVATE_V4: tuple[tuple[int, int], ...] = tuple(
    (int(n.network_address), int(n.broadcast_address)) for n in map(ipaddress.IPv4Network, (
        "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
        "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
        "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
        "100.64.0.0/10")))  # carrier-grade NAT's shared space: many people, not a rented block


def _public(network: str) -> bool:
    """Whether ``network`` (``a.b.c.d/len`` as the context gives it) is a public block."""
    address, _, length = network.partition("/")
    start = ipv4_number(address)
    if start >= 0 and length == "24":  # what the context makes of an IPv4 address
        return not _private_v4(start, start | 255)
    parts = address.split(".")
    if len(parts) != 4 or not length.isdigit():
        return _public_other(network)
    try:
        start = 0
        for part in parts:
            octet = int(part)
            if not 0 <= octet <= 255:
                return False
            start = start << 8 | octet
        prefix = int(length)
    except ValueError:
        return False
    if prefix > 32:
        return False
    end = start | ((1 << (32 - prefix)) - 1)
    return not _private_v4(start, end)


def _private_v4(start: int, end: int) -> bool:
    """Whether the span lies wholly inside one special-purpose block (a loop: compiled,
    ``any()`` over a generator builds a generator object per call)."""
    for low, high in _PRIVATE_V4:
        if low <= start and end <= high:
            return True
    return False


@functools.lru_cache(maxsize=65_536)
def _public_other(network: str) -> bool:
    """IPv6 (and anything else): through ipaddress, memoised per network."""
    try:
        return ipaddress.ip_network(network, strict=False).is_global
    except ValueError:
        return False


class SharedCounters:
    """Which shared keys a request touches; compiled once per policy.

    ``pass_valid`` checks a pass cookie (the engine's challenge service): a read is bare
    unless its pass is one the shield issued and still honours, else a fleet would put any
    cookie of that name on its requests to be counted as people who solved a challenge."""

    def __init__(self, policy: CompiledPolicy,
                 pass_valid: Callable[[RequestContext], bool] | None = None) -> None:
        self._pass_valid = pass_valid
        found = policy.source.detection
        camp = found.campaigns
        window, breadth = float(camp.window), float(camp.breadth_window)
        # Counted well past the threshold, so the assets-per-read ratio stays measurable.
        bare_cap = 50 * max(camp.bare_records, camp.network_bare_records)
        # A distinct set holds up to 2 x limit + 16 records: enough to measure the ratio.
        self._fp: tuple[CounterSpec, ...] = (
            (window, True, bare_cap), (window, False, _BIG),
            (breadth, True, camp.breadth_records * camp.breadth_per_client // 2 + 1),
        )
        self._fp_clients: tuple[CounterSpec, ...] = ((breadth, True, 4 * camp.breadth_clients),)
        self._net: tuple[CounterSpec, ...] = ((window, True, camp.network_bare_records),)
        # Costs typed as variable-length tuples: mypyc keeps a fixed-length tuple unboxed and
        # builds a new object at every read, and the stores cache a key's shape by identity.
        # (One attribute each, not a dict keyed by (direct bare, asset): no key tuple to hash.)
        self._direct_costs: tuple[int, ...] = (1, 0, 1)  # a bare read that no other site sent
        self._read_costs: tuple[int, ...] = (0, 0, 1)  # any other record read
        self._asset_costs: tuple[int, ...] = (0, 1, 0)
        # Bare reads that arrive from another site's link, per fingerprint: the same window
        # and cap as the direct ones, compared with the same asset count.
        self._entered: tuple[CounterSpec, ...] = ((window, True, bare_cap),)
        # Record routes a browser shows as pages (they have an HTML field map).
        self._pages = frozenset(r.name for r in policy.routes if r.record and r.html_fields)
        acc = found.accounts
        self._networks: tuple[CounterSpec, ...] = ((float(acc.networks_window), True, acc.max_networks),)
        self._age: tuple[CounterSpec, ...] = (
            (MONTH, False, _BIG),
            (float(acc.new_account_window), True, acc.new_account_records),
        )
        self._one: tuple[int, ...] = (1,)
        self._two: tuple[int, ...] = (1, 1)

    def updates(self, ctx: RequestContext) -> tuple[int, list[KeyUpdate]]:
        """(layout of the usages, the key updates) for one request; (0, []) for most pages."""
        fp = ctx.fingerprint
        if ctx.is_asset:
            return ASSET, [(f"trait-fp:{fp}", self._fp, self._asset_costs, "")]
        if not ctx.record:
            return 0, []
        bare = is_bare(ctx)
        if not bare and ctx.pass_cookie and self._pass_valid is not None and not ctx.token \
                and not from_site(ctx):
            bare = not self._pass_valid(ctx)  # a pass the shield did not issue (or no longer honours)
        page = ctx.route in self._pages
        if not (bare or page):
            return 0, []  # a warm API read: nothing a campaign detector needs
        entered = bare and from_elsewhere(ctx)
        costs = self._direct_costs if bare and not entered else self._read_costs
        keys: list[KeyUpdate] = [(f"trait-fp:{fp}", self._fp, costs, ctx.record)]
        layout = READ
        if page:  # a browser fleet reads pages: count who reads them
            layout |= PAGE
            keys.append((f"trait-fp-ip:{fp}", self._fp_clients, self._one, ctx.ip))
        if entered:
            layout |= ENTERED
            keys.append((f"trait-fp-in:{fp}", self._entered, self._one, ctx.record))
        if bare:
            layout |= BARE
            if _public(ctx.network):  # a private /24 is the site's own proxies, not a rented block
                keys.append((f"trait-net:{ctx.network}", self._net, self._one, ctx.record))
            else:
                keys.append(_NO_NETWORK)
        if ctx.account and bare:  # an account reading straight, as farms on the API do
            layout |= ACCOUNT
            keys.append((f"acct-nets:{ctx.account}", self._networks, self._one, ctx.network))
            keys.append((f"acct-age:{ctx.account}", self._age, self._two, ctx.record))
        return layout, keys

    @staticmethod
    def view(layout: int, usages: list[tuple[float, ...]]) -> tuple[float, ...]:
        """``ClientMemory.shared`` from the usages of the keys ``updates`` returned."""
        if layout == ASSET:
            return (0.0, 0.0, usages[0][1], 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
        fb, fa, records = usages[0]
        clients = nb = nets = reads = new = 0.0
        rest = usages[1:]
        if layout & PAGE:
            (clients,), rest = rest[0], rest[1:]
        if layout & ENTERED:  # judged against the reads that arrived the same way
            (fb,), rest = rest[0], rest[1:]
        if layout & BARE:
            nb, rest = (rest[0] or (0.0,))[0], rest[1:]
        if layout & ACCOUNT:
            (nets,), (reads, new) = rest
        return (float(layout & BARE == BARE), fb, fa, nb, 0.0, nets, reads, new, records, clients,
                float(layout & ENTERED == ENTERED))


# Positions in ``ClientMemory.shared``.
IS_BARE: Final = 0
FP_READS: Final = 1
FP_ASSETS: Final = 2
NET_READS: Final = 3
NET_ASSETS: Final = 4
ACCT_NETWORKS: Final = 5
ACCT_READS: Final = 6
ACCT_NEW: Final = 7
FP_RECORDS: Final = 8
FP_CLIENTS: Final = 9
IS_ENTERED: Final = 10
