"""Counters shared by every client with one trait, updated in the decision's state round trip.

Per-address memory cannot see a scraper that spends one to five requests per address.
What such a scraper's addresses share is a trait: the client fingerprint (user-agent,
header set and order, language, TLS/HTTP2 fingerprints from a trusted edge), the /24
network, and for signed-in scraping the account. The engine counts, under each trait,
what the campaign detectors need, in the same state call as the limits (so Redis still
answers a decision in one round trip), and hands the usages to the detectors as
``ClientMemory.shared``:

``shared`` = ``(bare, fp_reads, fp_assets, net_reads, net_assets, networks, reads_30d,
records_new)``, zeros where the request touched no such key:

- per fingerprint and per /24 network: distinct records read bare and asset loads within
  ``detection.campaigns.window`` (``bare`` is 1.0 when this request is a bare read);
- per account, for its record reads: the distinct /24 networks it used within
  ``networks_window``, its record reads over 30 days, and the distinct records it read
  within ``new_account_window``.

Other requests touch no shared key (most page views of people cost nothing extra).
"""

from __future__ import annotations

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.base import CounterSpec, KeyUpdate
from scrapeshield.types import RequestContext

TRAITS = 1  # layouts: an asset (trait keys only), a bare read, an account's read, or both
BARE = 2 | TRAITS
ACCOUNT = 4
MONTH = 30 * 86400.0
_BIG = 10_000_000  # request counters here are read, never limited


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


def is_bare(ctx: RequestContext) -> bool:
    """A record read that did not come from the site, holds no pass and no API token."""
    return bool(ctx.record) and not ctx.pass_cookie and not ctx.token and not from_site(ctx)


class SharedCounters:
    """Which shared keys a request touches; compiled once per policy."""

    def __init__(self, policy: CompiledPolicy) -> None:
        found = policy.source.detection
        window = float(found.campaigns.window)
        trait: tuple[CounterSpec, ...] = (
            (window, True, max(found.campaigns.bare_records, found.campaigns.network_bare_records)),
            (window, False, _BIG),
        )
        self._trait = trait
        self._bare_costs = (1, 0)
        self._asset_costs = (0, 1)  # an asset is no record: the distinct counter is only read
        acc = found.accounts
        self._networks: tuple[CounterSpec, ...] = ((float(acc.networks_window), True, acc.max_networks),)
        self._age: tuple[CounterSpec, ...] = (
            (MONTH, False, _BIG),
            (float(acc.new_account_window), True, acc.new_account_records),
        )
        self._one = (1,)
        self._two = (1, 1)

    def updates(self, ctx: RequestContext) -> tuple[int, list[KeyUpdate]]:
        """(layout of the usages, the key updates) for one request; (0, []) for most."""
        layout = 0
        keys: list[KeyUpdate] = []
        if ctx.is_asset:
            keys = [(f"trait-fp:{ctx.fingerprint}", self._trait, self._asset_costs, ""),
                    (f"trait-net:{ctx.network}", self._trait, self._asset_costs, "")]
            return TRAITS, keys
        if not ctx.record:
            return 0, keys
        if is_bare(ctx):
            layout = BARE
            keys = [(f"trait-fp:{ctx.fingerprint}", self._trait, self._bare_costs, ctx.record),
                    (f"trait-net:{ctx.network}", self._trait, self._bare_costs, ctx.record)]
        if ctx.account:
            layout |= ACCOUNT
            keys.append((f"acct-nets:{ctx.account}", self._networks, self._one, ctx.network))
            keys.append((f"acct-age:{ctx.account}", self._age, self._two, ctx.record))
        return layout, keys

    @staticmethod
    def view(layout: int, usages: list[tuple[float, ...]]) -> tuple[float, ...]:
        """``ClientMemory.shared`` from the usages of the keys ``updates`` returned."""
        if layout == TRAITS:
            (fr, fa), (nr, na) = usages
            return (0.0, fr, fa, nr, na, 0.0, 0.0, 0.0)
        if layout == BARE:
            (fr, fa), (nr, na) = usages
            return (1.0, fr, fa, nr, na, 0.0, 0.0, 0.0)
        if layout == ACCOUNT:
            (nets,), (reads, new) = usages
            return (0.0, 0.0, 0.0, 0.0, 0.0, nets, reads, new)
        (fr, fa), (nr, na), (nets,), (reads, new) = usages
        return (1.0, fr, fa, nr, na, nets, reads, new)


# Positions in ``ClientMemory.shared``.
IS_BARE, FP_READS, FP_ASSETS, NET_READS, NET_ASSETS, ACCT_NETWORKS, ACCT_READS, ACCT_NEW = range(8)
