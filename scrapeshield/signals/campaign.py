"""Campaigns on the request path: a scraper spread over many addresses, caught as a whole.

Reads the counters shared by every client with this request's fingerprint and /24
network (``signals.shared``). When the clients sharing a trait have read many distinct
records bare (no referer from the site, no pass, no token) and loaded few assets per
such read, that trait is being used to scrape; every client with it that reads a record
bare and has loaded no asset itself is scored as part of the campaign, however few
requests its own address made. People sharing the same fingerprint (everyone on the
current Chrome) load assets, so they are spared, and their asset loads keep the ratio
of a fingerprint that people use up.

How a client arrives is part of the trait: a bare read that follows another site's link
(a person landing from a search engine's results) is judged by the reads of this
fingerprint that arrived the same way, not by a fleet's referer-less ones. On its first
request a person has shown nothing of their own yet; what sets them apart from a fleet
that copies their browser build is that they arrive unlike it. A fleet that forges a
search engine's referer makes that count hot in turn, and is caught by it.
"""

from __future__ import annotations

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.signals.shared import (
    FP_ASSETS,
    FP_CLIENTS,
    FP_READS,
    FP_RECORDS,
    IS_BARE,
    IS_ENTERED,
    NET_ASSETS,
    NET_READS,
)
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal, new_signal

# A campaign trait: (signal, the trait, weight, reads needed, usage positions of reads, assets).
_Trait = tuple[str, str, float, int, int, int]


class CampaignDetector(DetectorBase):
    name = "campaign"

    def __init__(self, policy: CompiledPolicy) -> None:
        found = policy.source.detection.campaigns
        w = policy.weights
        # (signal, the trait, weight, reads needed, usage positions), one attribute each:
        # compiled, a loop over a tuple of them would be a generic Python iteration.
        self._fp_trait: _Trait = ("campaign.fingerprint", "fingerprint", w["campaign.fingerprint"],
                                  found.bare_records, FP_READS, FP_ASSETS)
        self._net_trait: _Trait = ("campaign.network", "network", w["campaign.network"],
                                   found.network_bare_records, NET_READS, NET_ASSETS)
        # Numbers formatted once: compiled, formatting a float is a generic call.
        self._seconds = f"{found.window:g}s"
        self._breadth_seconds = f"{found.breadth_window:g}s"
        self._ratio = found.assets_per_read
        self._share = found.bare_share
        self._breadth_weight = w["campaign.fingerprint-breadth"]
        self._breadth_records = found.breadth_records
        self._breadth_clients = found.breadth_clients
        self._per_client = found.breadth_per_client
        # The address set saturates at its cap (signals.shared): beyond it, a crowd, not a fleet.
        self._clients_cap = 2 * 4 * found.breadth_clients + 16

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        shared = memory.shared
        if len(shared) > FP_CLIENTS and ctx.record:
            self._breadth(ctx, shared, memory.record_reads, out)
        if not shared or not shared[IS_BARE] or memory.assets:
            return
        every = shared[FP_RECORDS] if len(shared) > FP_RECORDS else 0.0
        entered = len(shared) > IS_ENTERED and shared[IS_ENTERED] > 0
        self._trait(ctx, shared, self._fp_trait, every, entered, out)
        self._trait(ctx, shared, self._net_trait, every, entered, out)

    def _trait(self, ctx: RequestContext, shared: tuple[float, ...], found: _Trait, every: float,
               entered: bool, out: list[Signal]) -> None:
        name, trait, weight, least, reads_at, assets_at = found
        reads, assets = shared[reads_at], shared[assets_at]
        if reads >= least and (assets < self._ratio * reads
                               or trait == "fingerprint" and 0 < every <= reads / self._share):
            fingerprint = trait == "fingerprint"
            how = "reached from other sites' links" if entered and fingerprint else "read bare"
            value = ctx.fingerprint if fingerprint else ctx.network
            out.append(new_signal(
                name, weight,
                f"{trait} {value}: {int(reads)} profiles {how} by its "
                f"clients in {self._seconds}, {int(assets)} assets loaded",
            ))

    def _breadth(self, ctx: RequestContext, shared: tuple[float, ...], own: int, out: list[Signal]) -> None:
        records, clients = shared[FP_RECORDS], shared[FP_CLIENTS]
        # The fleet must be a fleet without this client: a heavy reader (a moderator, a NAT's
        # address) with a few light ones on its build would otherwise make the average, and
        # an address's own reading is what its own budgets and signals judge.
        if (records >= self._breadth_records and self._breadth_clients <= clients < self._clients_cap
                and records >= self._per_client * clients
                and records - own >= self._per_client * (clients - 1)):
            out.append(new_signal(
                "campaign.fingerprint-breadth", self._breadth_weight,
                f"fingerprint {ctx.fingerprint}: {int(records)} profiles read from {int(clients)} "
                f"addresses in {self._breadth_seconds} ({records / clients:.0f} each)",
            ))
