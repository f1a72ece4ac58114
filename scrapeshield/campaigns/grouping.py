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

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from scrapeshield.context import short_hash

if TYPE_CHECKING:
    from scrapeshield.db.store import Database

KINDS = ("fingerprint", "network", "pacing", "targets")
MAX_RECORDS_PER_CLIENT = 64  # records kept per client for the target-list trait
MAX_ACCOUNTS_PER_CLIENT = 16
MIN_CLIENTS = 3  # a campaign has at least this many clients
THIN_REQUESTS = 5  # a client this small, reading records only, is a distributed scraper's hop


def campaign_id(kind: str, key: str) -> str:
    """Stable per trait: regrouping the same trait updates the same campaign."""
    return "cmp-" + short_hash(f"{kind}\x1f{key}")[:12]


@dataclass(slots=True)
class ClientSummary:
    """What one client did, in bounded memory."""

    client: str
    network: str
    fingerprint: str
    user_agent: str
    first_seen: float
    last_seen: float
    requests: int = 0
    record_requests: int = 0
    refused: int = 0  # non-allow decisions
    score_sum: float = 0.0
    gaps: int = 0
    log_gap_sum: float = 0.0
    log_gap_sq: float = 0.0
    records: set[str] = field(default_factory=set)
    records_seen: int = 0  # distinct records, also past the kept sample
    accounts: set[str] = field(default_factory=set)
    routes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)

    def add(self, event: dict[str, Any]) -> None:
        ts = float(event.get("ts") or 0.0)
        if self.requests:
            gap = ts - self.last_seen
            if gap > 0:
                lg = math.log2(gap)
                self.gaps += 1
                self.log_gap_sum += lg
                self.log_gap_sq += lg * lg
        self.first_seen = min(self.first_seen, ts)
        self.last_seen = max(self.last_seen, ts)
        self.requests += 1
        record = str(event.get("record") or "")
        if record:
            self.record_requests += 1
            if record not in self.records:
                self.records_seen += 1
                if len(self.records) < MAX_RECORDS_PER_CLIENT:
                    self.records.add(record)
        account = str(event.get("account") or "")
        if account and len(self.accounts) < MAX_ACCOUNTS_PER_CLIENT:
            self.accounts.add(account)
        if len(self.routes) < 32 or event.get("route") in self.routes:
            self.routes[str(event.get("route") or "")] += 1
        if str(event.get("action") or "allow") != "allow":
            self.refused += 1
        self.score_sum += float(event.get("score") or 0.0)
        for reason in _reasons(event.get("reasons"))[:4]:
            if len(self.reasons) < 16 or reason in self.reasons:
                self.reasons[reason] += 1

    @property
    def thin(self) -> bool:
        """A hop of a distributed scraper: a few requests, every one for a personal record."""
        return self.requests <= THIN_REQUESTS and self.record_requests == self.requests

    def pacing_key(self) -> str:
        """Main route and typical gap (power of two) of a machine-regular client, else "".

        People's think times spread over orders of magnitude; a scheduler's gaps do not.
        """
        if self.gaps < 4:
            return ""
        mean = self.log_gap_sum / self.gaps
        spread = math.sqrt(max(0.0, self.log_gap_sq / self.gaps - mean * mean))
        if spread >= 0.7:
            return ""
        route = self.routes.most_common(1)[0][0] if self.routes else ""
        return f"{route}|~2^{round(mean)}s"

    def target_key(self) -> str:
        """A min-hash of the records read: clients with overlapping target lists share it."""
        if len(self.records) < 3:
            return ""
        return "|".join(sorted(self.records, key=short_hash)[:2])


@dataclass(frozen=True, slots=True)
class Campaign:
    id: str
    kind: str
    key: str
    label: str
    first_seen: float
    last_seen: float
    clients: int
    requests: int
    records: int
    score: float
    reasons: tuple[str, ...]
    members: tuple[ClientSummary, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "kind": self.kind, "key": self.key, "label": self.label,
            "first_seen": self.first_seen, "last_seen": self.last_seen, "clients": self.clients,
            "requests": self.requests, "records": self.records, "score": self.score,
            "reasons": list(self.reasons),
        }


class CampaignGrouper:
    """Feed events with ``observe``; ``campaigns()`` groups and scores the clients seen."""

    def __init__(self, *, min_clients: int = MIN_CLIENTS, min_score: float = 0.0,
                 max_clients: int = 2_000_000) -> None:
        self.min_clients = min_clients
        self.min_score = min_score
        self.max_clients = max_clients
        self.clients: dict[str, ClientSummary] = {}
        self.observed = 0
        self.ignored = 0  # events past ``max_clients`` or without a client

    def observe(self, event: dict[str, Any]) -> None:
        client = str(event.get("client") or "")
        if not client:
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
            _campaign(kind, key, members)
            for (kind, key), members in groups.items()
            if len(members) >= self.min_clients
        ]
        found = [c for c in found if c.score >= self.min_score]
        found.sort(key=lambda c: (-c.score, -c.records, c.id))
        return found

    def campaign_of(self, client: str) -> list[Campaign]:
        """The campaigns a client belongs to (strongest first)."""
        return [c for c in self.campaigns() if any(m.client == client for m in c.members)]


def _reasons(raw: object) -> list[str]:
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return [str(raw)] if raw else []
    if isinstance(raw, (list, tuple)):
        return [str(r) for r in raw]
    return []


def _campaign(kind: str, key: str, members: list[ClientSummary]) -> Campaign:
    requests = sum(m.requests for m in members)
    record_requests = sum(m.record_requests for m in members)
    records = len(set().union(*(m.records for m in members)))
    records = max(records, max(m.records_seen for m in members))
    approx_records = max(records, min(sum(m.records_seen for m in members), record_requests))
    score, reasons = _score(kind, key, members, requests, record_requests, approx_records)
    return Campaign(
        id=campaign_id(kind, key), kind=kind, key=key[:200], label=_label(kind, key, members),
        first_seen=min(m.first_seen for m in members), last_seen=max(m.last_seen for m in members),
        clients=len(members), requests=requests, records=approx_records, score=score,
        reasons=tuple(reasons), members=tuple(sorted(members, key=lambda m: m.client)),
    )


def _score(
    kind: str, key: str, members: list[ClientSummary], requests: int, record_requests: int,
    records: int,
) -> tuple[float, list[str]]:
    """0-100 from what the members did, with a reason per part that counted.

    Parts: the engine's own scores for these requests, the share refused, how many of
    the clients are thin hops reading records only, and the volume of distinct records
    relative to the number of clients (a crowd of people reads few profiles each).
    """
    n = len(members)
    reasons = [f"{n} clients share {_trait_words(kind)}"]
    mean_score = sum(m.score_sum for m in members) / max(requests, 1)
    refused = sum(m.refused for m in members) / max(requests, 1)
    thin = sum(1 for m in members if m.thin) / n
    points = 0.0
    if mean_score >= 5:
        points += min(35.0, mean_score * 0.7)
        reasons.append(f"mean request score {mean_score:.0f}")
    if refused >= 0.02:
        points += min(25.0, refused * 60)
        reasons.append(f"{refused:.0%} of requests refused")
    # People in a crowd read the same popular profiles; a coordinated scraper's hops
    # each fetch records no other hop fetched: breadth near 1.
    breadth = records / record_requests if record_requests else 0.0
    if thin >= 0.5 and n >= 20 and breadth >= 0.6:
        points += 15 + min(10.0, 10 * (thin - 0.5) * 2)
        reasons.append(f"{thin:.0%} of clients are thin hops (≤{THIN_REQUESTS} requests, records only)")
    if records >= 200 and breadth >= 0.8:
        points += min(20.0, 6 * math.log10(records / 100))
        reasons.append(f"{records} distinct records, {breadth:.0%} of reads new")
    if 0.5 <= thin < 0.97 and n >= 20:
        # Thin hops with a minority of ordinary clients: people share this trait.
        reasons.append(f"{1 - thin:.0%} of clients are not thin hops (people may share this "
                       f"{kind}): prefer challenge to block")
    signals = Counter[str]()
    for m in members:
        signals.update(m.reasons)
    if signals:
        top = ", ".join(r for r, _ in signals.most_common(3))
        reasons.append(f"top reasons: {top}")
    return round(min(100.0, points), 1), reasons


def _trait_words(kind: str) -> str:
    return {
        "fingerprint": "one client fingerprint",
        "network": "one subnet",
        "pacing": "one pacing profile",
        "targets": "an overlapping target list",
    }.get(kind, kind)


def _label(kind: str, key: str, members: list[ClientSummary]) -> str:
    if kind == "fingerprint":
        agents = Counter(m.user_agent for m in members).most_common(1)
        agent = agents[0][0] if agents else ""
        return f"fingerprint {key[:16]} ({agent[:80] or 'no user-agent'})"
    if kind == "network":
        return f"subnet {key[:40]}"
    if kind == "pacing":
        return f"pace {key[:80]}"
    return f"targets {short_hash(key)[:8]}"


def save(db: Database, campaigns: Sequence[Campaign], now: float | None = None) -> int:
    """Store campaigns (upsert by id); ``now`` defaults to the newest member activity."""
    from scrapeshield.campaigns import store

    when = now if now is not None else max((c.last_seen for c in campaigns), default=0.0)
    return store.save(db, campaigns, when)
