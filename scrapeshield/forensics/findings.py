"""Decided lines → what happened: clients contained, campaigns, incidents, records taken.

"Taken" is what the log says the site served (status below 400) of the personal records
in the policy's route map; "taken under the shield" counts only the lines the shield would
have allowed, so the difference is what the shield would have kept. Campaigns come from
the shield's own ``CampaignGrouper``, fed with per-client summaries built column-wise.

Clients are worked on by an integer code (one hashing pass over the addresses), never by
grouping on the address strings again; Python objects are made once per client, not per line.
"""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import polars as pl

from scrapeshield.campaigns.grouping import MAX_RECORDS_PER_CLIENT, Campaign, CampaignGrouper, ClientSummary
from scrapeshield.forensics.lookup import encode
from scrapeshield.forensics.windows import grouped
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.types import SEVERITY, Action

CAMPAIGN_MIN_SCORE = 20.0  # as the campaigns job: below this, a crowd of ordinary browsers
CONTAINED = SEVERITY[Action.DEGRADE]  # anything but allow: the real record was not simply served
_SEVERITY = {a.value: s for a, s in SEVERITY.items()}
_ACTION_OF = {s: a for a, s in _SEVERITY.items()}
_CLIENT_COLUMNS = ("cid", "client", "lines", "first_seen", "last_seen", "contained_at", "worst",
                   "worst_action", "rule", "network", "fp", "ua", "record_lines", "refused", "score_sum",
                   "score_max")


@dataclass
class Findings:
    clients: pl.DataFrame  # one row per client address
    campaigns: list[Campaign]
    records: dict[str, set[str]]  # client → distinct records served to it (contained, members)
    records_allowed: dict[str, set[str]]  # client → those served on lines the shield allows
    routes_of: dict[str, frozenset[str]]  # record → routes it was served through
    categories: dict[str, tuple[str, ...]]  # route → personal fields
    ip_of: dict[str, str] = field(default_factory=dict)  # pseudonym → address (campaign members)
    decisions: dict[str, int] = field(default_factory=dict)

    def member_ips(self, campaign: Campaign) -> list[str]:
        return [self.ip_of.get(m.client, m.client) for m in campaign.members]

    def contained(self) -> pl.DataFrame:
        return self.clients.filter(pl.col("contained_at").is_not_null()).sort("contained_at")

    def taken(self, clients: list[str], *, allowed_only: bool = False) -> set[str]:
        source = self.records_allowed if allowed_only else self.records
        out: set[str] = set()
        for client in clients:
            out |= source.get(client, set())
        return out

    def fields_of(self, records: set[str]) -> list[str]:
        found: set[str] = set()
        for record in records:
            for route in self.routes_of.get(record, ()):
                found.update(self.categories.get(route, ()))
        return sorted(found)


def find(decided: pl.DataFrame, policy: CompiledPolicy, pseudonymise: Callable[[str], str]) -> Findings:
    """Campaigns are grouped on pseudonyms (client and network), as the live campaigns job
    groups stored events, so a replayed campaign has the id a live one would have."""
    with _without_gc_passes():
        return _find(decided, policy, pseudonymise)


@contextmanager
def _without_gc_passes() -> Iterator[None]:
    """Python's cycle collector paused while the per-client objects are made: hundreds of
    thousands of sets, counters and summaries set off collection after collection over all
    of them (measured: a third of the findings' time on 5M lines). Nothing made here forms
    a cycle that must go before the collector runs again."""
    paused = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


def _find(decided: pl.DataFrame, policy: CompiledPolicy, pseudonymise: Callable[[str], str]) -> Findings:
    codes, names = encode(decided["client"])
    records_of = _Records(codes, decided["record"], names.to_list())
    d = decided.with_columns(
        pl.Series("cid", codes),
        pl.col("action").replace_strict(_SEVERITY, return_dtype=pl.Int8).alias("sev"),
        pl.Series("reads", records_of.reads),
    ).with_columns((pl.col("reads") & (pl.col("status") >= 200) & (pl.col("status") < 400)).alias("served"))
    clients = _clients(d)
    grouper = CampaignGrouper(min_score=CAMPAIGN_MIN_SCORE)
    summaries = _summaries(d, clients, codes, records_of)
    ip_of: dict[str, str] = {}
    for ip, summary in summaries.items():
        summary.client = pseudonymise(ip)
        summary.network = pseudonymise(summary.network)
        ip_of[summary.client] = ip
    grouper.clients = {s.client: s for s in summaries.values()}
    grouper.observed = d.height
    campaigns = grouper.campaigns()
    # Records are sized for the clients a report shows: the contained and campaign members.
    wanted = set(clients.filter(pl.col("contained_at").is_not_null())["client"].to_list())
    for campaign in campaigns:
        wanted.update(ip_of.get(m.client, m.client) for m in campaign.members)
    wanted_codes = clients.filter(pl.col("client").is_in(pl.Series(list(wanted), dtype=pl.String).implode()))
    of_wanted = pl.col("served") & pl.col("cid").is_in(wanted_codes["cid"].implode())
    served = d.select(of_wanted.alias("w"), (of_wanted & (pl.col("action") == "allow")).alias("a"))
    records = records_of.sets(served["w"].to_numpy())
    records_allowed = records_of.sets(served["a"].to_numpy())
    routes_of = _routes_of(d.select("record", "route").filter(served["w"]))
    per_severity = np.bincount(d["sev"].to_numpy(), minlength=len(_ACTION_OF))
    counts = {_ACTION_OF[s]: n for s, n in enumerate(per_severity.tolist()) if n}
    return Findings(
        clients.drop("cid"),
        campaigns,
        records,
        records_allowed,
        routes_of,
        {r.name: r.personal_fields for r in policy.routes},
        ip_of,
        {str(k): int(v) for k, v in counts.items()},
    )


def _clients(d: pl.DataFrame) -> pl.DataFrame:
    refused = pl.col("sev") >= CONTAINED
    return d.group_by("cid", maintain_order=True).agg(
        pl.col("client").first(),
        pl.len().alias("lines"),
        pl.col("ts").min().alias("first_seen"),
        pl.col("ts").max().alias("last_seen"),
        pl.col("ts").filter(refused).min().alias("contained_at"),
        pl.col("sev").max().alias("worst"),
        pl.col("rule").filter(refused).mode().first().alias("rule"),
        pl.col("network").first(),
        pl.col("fp").first(),
        pl.col("ua").first(),
        pl.col("reads").sum().alias("record_lines"),
        refused.sum().alias("refused"),  # (allow is the one action of severity 0)
        pl.col("score").sum().alias("score_sum"),
        pl.col("score").max().alias("score_max"),
    ).with_columns(  # (severities are one per action: the worst one names it)
        pl.col("worst").replace_strict(_ACTION_OF, return_dtype=pl.String).alias("worst_action")
    ).select(_CLIENT_COLUMNS)


class _Records:
    """Each line's client and record by number (one hashing pass over the record texts), so
    the per-client sets are made from numbers and the texts are shared, not made per line."""

    def __init__(self, clients: np.ndarray, records: pl.Series, client_names: list[str]) -> None:
        rows, texts = encode(records)
        self.words = np.array(texts.to_list(), dtype=object)  # (gathered by number in C)
        self.width = max(1, len(self.words))
        self.pairs = clients * self.width + rows  # client and record in one number
        self.reads = (records != "").to_numpy()
        self.client_names = client_names

    def sets(self, lines: np.ndarray) -> dict[str, set[str]]:
        """client → the distinct records on the chosen lines (a boolean per line)."""
        pairs = np.sort(self.pairs[lines & self.reads])  # by client, then record
        if len(pairs):  # (np.unique hashes: many times slower than this on sorted numbers)
            pairs = pairs[np.r_[True, pairs[1:] != pairs[:-1]]]
        return {self.client_names[c]: set(texts) for c, texts in self._runs(pairs)}

    def firsts(self, count: int) -> tuple[np.ndarray, dict[int, dict[str, None]]]:
        """Per client: how many distinct records it read, and the first MAX_RECORDS_PER_CLIENT
        of them in the order it first read them (``ClientSummary.add``'s sample)."""
        pairs = pl.Series(self.pairs[self.reads]).unique(maintain_order=True).to_numpy()
        client = pairs // self.width
        seen = np.bincount(client, minlength=count)
        order = grouped(client)  # by client, first reads first
        by_client = client[order]
        start = np.flatnonzero(np.r_[True, by_client[1:] != by_client[:-1]]) if len(order) else order
        rank = np.arange(len(order)) - np.repeat(start, np.diff(np.r_[start, len(order)]))
        kept = pairs[order][rank < MAX_RECORDS_PER_CLIENT]
        return seen, {c: dict.fromkeys(texts) for c, texts in self._runs(kept)}

    def _runs(self, pairs: np.ndarray) -> list[tuple[int, list[str]]]:
        """Numbers grouped by client (``pairs`` in client order) → (client, record texts)."""
        if not len(pairs):
            return []
        client = pairs // self.width
        texts: list[str] = self.words[pairs % self.width].tolist()
        starts = np.flatnonzero(np.r_[True, client[1:] != client[:-1]])
        ends = np.r_[starts[1:], len(pairs)].tolist()
        firsts = client[starts].tolist()
        return [(c, texts[a:b]) for c, a, b in zip(firsts, starts.tolist(), ends, strict=True)]


def _routes_of(served: pl.DataFrame) -> dict[str, frozenset[str]]:
    """record → the routes it was served through (nearly always one: one frozenset per route)."""
    pairs = served.select("record", "route").unique(maintain_order=True)
    one = {route: frozenset([route]) for route in pairs["route"].unique().to_list()}
    records, routes = pairs["record"].to_list(), pairs["route"].to_list()
    out = dict(zip(records, [one[r] for r in routes], strict=True))
    if len(out) < len(records):  # a record served through several routes
        many: dict[str, set[str]] = {}
        for record, route in zip(records, routes, strict=True):
            many.setdefault(record, set()).add(route)
        out.update({r: frozenset(rs) for r, rs in many.items() if len(rs) > 1})
    return out


def _gaps(ts: np.ndarray, codes: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per client: the number of positive gaps between its successive lines, and the sums of
    their log2 and squared log2, added in time order as ``ClientSummary.add`` adds them."""
    order = grouped(codes)
    c, t = codes[order], ts[order]
    gap = t[1:] - t[:-1]
    ok = (c[1:] == c[:-1]) & (gap > 0)
    who = c[1:][ok]
    lg = np.log2(gap[ok])
    return (
        np.bincount(who, minlength=count),
        np.bincount(who, lg, minlength=count),
        np.bincount(who, lg * lg, minlength=count),
    )


def _counters(codes: np.ndarray, keys: pl.Series, count: int) -> dict[int, dict[str, int]]:
    """A count of ``keys`` per client code: one count over (client, key) numbers, each
    client's keys put in as first seen (as ``ClientSummary.add`` would: ties keep that order)."""
    rows, names = encode(keys)
    width = max(1, len(names))
    pairs = codes * width + rows
    tally = np.bincount(pairs, minlength=count * width)
    found = pl.Series(pairs).unique(maintain_order=True).to_numpy()
    words = names.to_list()
    out: dict[int, dict[str, int]] = {}
    for at, n in zip(found.tolist(), tally[found].tolist(), strict=True):
        client, key = divmod(at, width)
        counter = out.get(client)
        if counter is None:
            counter = out[client] = {}
        counter[words[key]] = n
    return out


def _summaries(
    d: pl.DataFrame, clients: pl.DataFrame, codes: np.ndarray, records: _Records
) -> dict[str, ClientSummary]:
    """The grouper's per-client summary (see ``ClientSummary.add``), computed column-wise."""
    count = int(codes.max()) + 1 if len(codes) else 0
    gaps, lg, lg2 = _gaps(d["ts"].to_numpy(), codes, count)
    seen, samples = records.firsts(count)
    routes = _counters(codes, d["route"], count)
    refused = d.select("cid", "rule", "action").filter(pl.col("action") != "allow")
    reasons = _counters(refused["cid"].to_numpy(), refused["rule"], count)
    columns = ("cid", "client", "network", "fp", "ua", "first_seen", "last_seen",
               "lines", "record_lines", "refused", "score_sum")
    out: dict[str, ClientSummary] = {}
    for cid, client, network, fp, ua, first, last, lines, record_lines, refused, score_sum in zip(
        *(clients[c].to_list() for c in columns), strict=True
    ):
        out[client] = ClientSummary(
            client, network, fp, (ua or "")[:200], first, last,
            lines, record_lines, refused, score_sum,
            int(gaps[cid]), float(lg[cid]), float(lg2[cid]),
            samples.get(cid, {}), int(seen[cid]), {},
            routes.get(cid, {}), reasons.get(cid, {}),
        )
    return out
