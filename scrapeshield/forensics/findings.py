"""Decided lines → what happened: clients contained, campaigns, incidents, records taken.

"Taken" is what the log says the site served (status below 400) of the personal records
in the policy's route map; "taken under the shield" counts only the lines the shield would
have allowed, so the difference is what the shield would have kept. Campaigns come from
the shield's own ``CampaignGrouper``, fed with per-client summaries built column-wise.

Clients are worked on by an integer code (one hashing pass over the addresses), never by
grouping on the address strings again; Python objects are made once per client, not per line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

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
    codes, _ = encode(decided["client"])
    d = decided.with_columns(
        pl.Series("cid", codes),
        pl.col("action").replace_strict(_SEVERITY, return_dtype=pl.Int8).alias("sev"),
        ((pl.col("status") >= 200) & (pl.col("status") < 400) & (pl.col("record") != "")).alias("served"),
    )
    clients = _clients(d)
    grouper = CampaignGrouper(min_score=CAMPAIGN_MIN_SCORE)
    summaries = _summaries(d, clients, codes)
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
    served = d.select("cid", "client", "record", "route", "action", "served").filter(
        pl.col("served") & pl.col("cid").is_in(wanted_codes["cid"].implode())
    )
    records = _record_sets(served)
    records_allowed = _record_sets(served.filter(pl.col("action") == "allow"))
    counts = dict(d.group_by("action").len().iter_rows())
    return Findings(
        clients.drop("cid"),
        campaigns,
        records,
        records_allowed,
        _routes_of(served),
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
        pl.col("action").sort_by("sev", descending=True).first().alias("worst_action"),
        pl.col("rule").filter(refused).mode().first().alias("rule"),
        pl.col("network").first(),
        pl.col("fp").first(),
        pl.col("ua").first(),
        (pl.col("record") != "").sum().alias("record_lines"),
        (pl.col("action") != "allow").sum().alias("refused"),
        pl.col("score").sum().alias("score_sum"),
        pl.col("score").max().alias("score_max"),
    )


Runs = tuple[list[int], list[tuple[int, int]], list[list[Any]]]  # codes, their spans, values


def _by_client(pairs: pl.DataFrame, *values: str) -> Runs:
    """Rows with a ``cid`` → the codes, where each code's run starts and ends, and the
    ``values`` columns, sorted by code (order inside a code kept): Python lists made in one
    go, not row by row."""
    pairs = pairs.sort("cid", maintain_order=True)
    cids = pairs["cid"].to_numpy()
    if not len(cids):
        return [], [], [[] for _ in values]
    starts = np.flatnonzero(np.r_[True, cids[1:] != cids[:-1]])
    ends = np.r_[starts[1:], len(cids)]
    spans = list(zip(starts.tolist(), ends.tolist(), strict=True))
    return cids[starts].tolist(), spans, [pairs[v].to_list() for v in values]


def _record_sets(served: pl.DataFrame) -> dict[str, set[str]]:
    pairs = served.select("cid", "client", "record").unique(["cid", "record"], maintain_order=True)
    codes, spans, (records, names) = _by_client(pairs, "record", "client")
    return {str(names[a]): set(records[a:b]) for (a, b) in spans}


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


def _counters(pairs: pl.DataFrame) -> dict[int, Counter[str]]:
    """(cid, key, len) rows → a Counter per client code."""
    codes, spans, (keys, counts) = _by_client(pairs, "key", "len")
    return {
        code: Counter(dict(zip(keys[a:b], counts[a:b], strict=True)))
        for code, (a, b) in zip(codes, spans, strict=True)
    }


def _summaries(d: pl.DataFrame, clients: pl.DataFrame, codes: np.ndarray) -> dict[str, ClientSummary]:
    """The grouper's per-client summary (see ``ClientSummary.add``), computed column-wise."""
    count = int(codes.max()) + 1 if len(codes) else 0
    gaps, lg, lg2 = _gaps(d["ts"].to_numpy(), codes, count)
    with_records = d.select("cid", "record").filter(pl.col("record") != "")
    firsts = with_records.unique(maintain_order=True)  # each client's records, first reads first
    seen = np.bincount(firsts["cid"].to_numpy(), minlength=count)
    sample = firsts.filter(pl.int_range(pl.len()).over("cid") < MAX_RECORDS_PER_CLIENT)
    sample_codes, sample_spans, (sample_records,) = _by_client(sample, "record")
    samples = {
        c: set(sample_records[a:b])
        for c, (a, b) in zip(sample_codes, sample_spans, strict=True)
    }
    routes = _counters(d.group_by("cid", pl.col("route").alias("key")).len())
    refused = d.select("cid", "rule", "action").filter(pl.col("action") != "allow")
    reasons = _counters(refused.group_by("cid", pl.col("rule").alias("key")).len())
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
            samples.get(cid, set()), int(seen[cid]), set(),
            routes.get(cid, Counter()), reasons.get(cid, Counter()),
        )
    return out
