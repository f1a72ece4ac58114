"""Events → campaigns: clients grouped by a shared fingerprint, subnet, pace or target list.

A distributed scraper spreads its requests so that no single client crosses a limit;
what its clients still share is how they look (fingerprint), where they come from
(subnet), how they pace themselves, or which records they go after. ``CampaignGrouper``
keeps a small summary per client, O(1) per event, and ``campaigns()`` builds the groups
and scores each one from what its members did (the engine's own per-request scores and
refusals, and the shape of the traffic: thin clients, breadth of records).

Event dicts have the shape of rows of the events table: ts, client, network,
fingerprint, user_agent, account, route, record, action, score, reasons (a list, or the
table's JSON text).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from scrapeshield.campaigns.members import MAX_RECORDS_PER_CLIENT, Campaign, ClientSummary
from scrapeshield.campaigns.scoring import build_campaign, campaign_id

if TYPE_CHECKING:
    from scrapeshield.db.store import Database

__all__ = ["MAX_RECORDS_PER_CLIENT", "Campaign", "CampaignGrouper", "ClientSummary", "campaign_id", "save"]

KINDS = ("fingerprint", "network", "pacing", "targets")
MIN_CLIENTS = 3  # a campaign has at least this many clients


class CampaignGrouper:
    """Feed events with ``observe``; ``campaigns()`` groups and scores the clients seen."""

    def __init__(self, *, min_clients: int = MIN_CLIENTS, min_score: float = 0.0,
                 max_clients: int = 2_000_000) -> None:
        self.min_clients = min_clients
        self.min_score = min_score
        self.max_clients = max_clients
        self.clients: dict[str, ClientSummary] = {}
        self.observed = 0
        self.ignored = 0  # events past ``max_clients``, without a client, or of a verified crawler

    def observe(self, event: dict[str, Any]) -> None:
        client = str(event.get("client") or "")
        if not client or _verified_crawler(event.get("reasons")):
            # A verified search engine is not part of anyone's campaign, even when spoofers
            # copy its fingerprint: acting on that campaign must not reach the real crawler.
            self.ignored += 1
            return
        summary = self.clients.get(client)
        if summary is None:
            if len(self.clients) >= self.max_clients:
                self.ignored += 1
                return
            ts = float(event.get("ts") or 0.0)
            summary = ClientSummary(
                client, str(event.get("network") or ""), str(event.get("fingerprint") or ""),
                str(event.get("user_agent") or "")[:200], ts, ts,
            )
            self.clients[client] = summary
        summary.add(event)
        self.observed += 1

    def forget_before(self, ts: float) -> int:
        """Drop clients idle since before ``ts`` (the grouping window); returns how many."""
        old = [c for c, s in self.clients.items() if s.last_seen < ts]
        for client in old:
            del self.clients[client]
        return len(old)

    def campaigns(self) -> list[Campaign]:
        groups: dict[tuple[str, str], list[ClientSummary]] = {}
        for summary in self.clients.values():
            traits = (
                ("fingerprint", summary.fingerprint),
                ("network", summary.network),
                ("pacing", summary.pacing_key()),
                ("targets", summary.target_key()),
            )
            for kind, key in traits:
                if key:
                    groups.setdefault((kind, key), []).append(summary)
        found = [
            build_campaign(kind, key, members)
            for (kind, key), members in groups.items()
            if len(members) >= self.min_clients
        ]
        found = [c for c in found if c.score >= self.min_score]
        found.sort(key=lambda c: (-c.score, -c.records, c.id))
        return found

    def campaign_of(self, client: str) -> list[Campaign]:
        """The campaigns a client belongs to (strongest first)."""
        return [c for c in self.campaigns() if any(m.client == client for m in c.members)]


def _verified_crawler(reasons: object) -> bool:
    """Whether a decision's reasons (a list, or the events table's JSON text) say the address
    was verified as a search engine's (``goodbot.verified``)."""
    if isinstance(reasons, str):
        return '"goodbot.verified ' in reasons or reasons.startswith("goodbot.verified ")
    if isinstance(reasons, (list, tuple)):
        return any(str(r).startswith("goodbot.verified ") for r in reasons)
    return False


def save(db: Database, campaigns: Sequence[Campaign], now: float | None = None) -> int:
    """Store campaigns (upsert by id); ``now`` defaults to the newest member activity."""
    from scrapeshield.campaigns import store

    when = now if now is not None else max((c.last_seen for c in campaigns), default=0.0)
    return store.save(db, campaigns, when)
