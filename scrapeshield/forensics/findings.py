"""Decided lines → what happened: clients contained, campaigns, incidents, records taken.

"Taken" is what the log says the site served (status below 400) of the personal records
in the policy's route map; "taken under the shield" counts only the lines the shield would
have allowed, so the difference is what the shield would have kept. Campaigns come from
the shield's own ``CampaignGrouper``, fed with per-client summaries built column-wise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import polars as pl

from scrapeshield.campaigns.grouping import MAX_RECORDS_PER_CLIENT, Campaign, CampaignGrouper, ClientSummary
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
    d = decided.with_columns(
        pl.col("action").replace_strict(_SEVERITY, return_dtype=pl.Int8).alias("sev"),
        ((pl.col("status") >= 200) & (pl.col("status") < 400) & (pl.col("record") != "")).alias("served"),
    )
    clients = _clients(d)
    grouper = CampaignGrouper(min_score=CAMPAIGN_MIN_SCORE)
    summaries = _summaries(d, clients)
    ip_of: dict[str, str] = {}
    for ip, summary in list(summaries.items()):
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
    served = d.filter(
        pl.col("served") & pl.col("client").is_in(pl.Series(list(wanted), dtype=pl.String).implode())
    )
    records = _record_sets(served)
    records_allowed = _record_sets(served.filter(pl.col("action") == "allow"))
    routes = served.group_by("record").agg(pl.col("route").unique())
    routes_of = {r: frozenset(rs) for r, rs in routes.iter_rows()}
    counts = dict(d.group_by("action").len().iter_rows())
    return Findings(
        clients,
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
    return d.group_by("client", maintain_order=True).agg(
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


def _record_sets(served: pl.DataFrame) -> dict[str, set[str]]:
    grouped = served.group_by("client").agg(pl.col("record").unique())
    return {c: set(rs) for c, rs in grouped.iter_rows()}


def _summaries(d: pl.DataFrame, clients: pl.DataFrame) -> dict[str, ClientSummary]:
    """The grouper's per-client summary (see ``ClientSummary.add``), computed column-wise."""
    gaps = (
        d.select("client", pl.col("ts").diff().over("client").alias("gap"))
        .filter(pl.col("gap") > 0)
        .group_by("client")
        .agg(
            pl.len().alias("gaps"),
            pl.col("gap").log(2).sum().alias("lg"),
            (pl.col("gap").log(2) ** 2).sum().alias("lg2"),
        )
    )
    with_records = d.filter(pl.col("record") != "")
    sample = with_records.group_by("client").agg(
        pl.col("record").unique(maintain_order=True).head(MAX_RECORDS_PER_CLIENT).alias("sample"),
        pl.col("record").n_unique().alias("seen"),
    )
    routes = d.group_by("client", "route").len()
    route_counts: dict[str, Counter[str]] = {}
    for client, route, n in routes.iter_rows():
        route_counts.setdefault(client, Counter())[route] = n
    reasons = d.filter(pl.col("action") != "allow").group_by("client", "rule").len()
    reason_counts: dict[str, Counter[str]] = {}
    for client, rule, n in reasons.iter_rows():
        reason_counts.setdefault(client, Counter())[rule] = n
    table = clients.join(gaps, on="client", how="left").join(sample, on="client", how="left")
    out: dict[str, ClientSummary] = {}
    for row in table.iter_rows(named=True):
        client = row["client"]
        summary = ClientSummary(
            client, row["network"], row["fp"], (row["ua"] or "")[:200], row["first_seen"], row["last_seen"]
        )
        summary.requests = row["lines"]
        summary.record_requests = row["record_lines"]
        summary.refused = row["refused"]
        summary.score_sum = row["score_sum"]
        summary.gaps = row["gaps"] or 0
        summary.log_gap_sum = row["lg"] or 0.0
        summary.log_gap_sq = row["lg2"] or 0.0
        summary.records = set(row["sample"] or ())
        summary.records_seen = row["seen"] or 0
        summary.routes = route_counts.get(client, Counter())
        summary.reasons = reason_counts.get(client, Counter())
        out[client] = summary
    return out
