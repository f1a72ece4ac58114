"""Incidents from what the shield stored: a campaign, or a time range.

Records "taken" are those served for real: from the ledger's window summaries (every decision;
``records_taken`` lists records answered with ``allow``), completed by the events table's
``allow`` events (a sample) for clients the ledger has not summarised yet. A time-range incident
takes the clients that were flagged in it: any decision other than ``allow``, or a campaign member.
"""

from __future__ import annotations

import hashlib
import math
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy import select

from scrapeshield.db.models import CampaignMemberRow, CampaignRow, EventRow
from scrapeshield.db.store import Database
from scrapeshield.legal.breach import Incident
from scrapeshield.legal.document import when
from scrapeshield.legal.errors import LegalError
from scrapeshield.legal.ledger import Entry, Ledger


def campaign_row(db: Database, campaign_id: str) -> dict[str, object]:
    with db.engine.connect() as conn:
        row = conn.execute(select(CampaignRow).where(CampaignRow.id == campaign_id)).mappings().first()
    if row is None:
        raise LegalError(f"no campaign {campaign_id!r} (see: scrapeshield campaigns list)")
    return dict(row)


def campaign_clients(db: Database, campaign_id: str) -> list[str]:
    with db.engine.connect() as conn:
        return list(conn.execute(
            select(CampaignMemberRow.client).where(CampaignMemberRow.campaign_id == campaign_id)
            .order_by(CampaignMemberRow.client)).scalars())


def window_entries(ledger: Ledger, clients: Iterable[str], start: float, end: float) -> list[Entry]:
    """The ledger's window summaries of these clients whose window overlaps [start, end]."""
    found = []
    # An entry is written after its window closed, so none about [start, end] is older than start.
    for entry in ledger.entries(kind="window", subjects=clients, since=start):
        w0, w1 = entry.body.get("window", [math.inf, -math.inf])
        if w1 >= start and w0 <= end:
            found.append(entry)
    return found


def taken_records(db: Database, entries: list[Entry], clients: list[str], start: float,
                  end: float) -> dict[str, frozenset[str]]:
    taken: dict[str, set[str]] = defaultdict(set)
    for entry in entries:
        routes = entry.body.get("taken_routes", {})
        for record in entry.body.get("records_taken", []):
            taken[record].add(routes.get(record, ""))
    with db.engine.connect() as conn:
        for i in range(0, len(clients), 500):
            rows = conn.execute(
                select(EventRow.record, EventRow.route)
                .where(EventRow.client.in_(clients[i:i + 500]), EventRow.action == "allow",
                       EventRow.record != "", EventRow.ts >= start, EventRow.ts <= end))
            for record, route in rows:
                taken[record].add(route)
    return {r: frozenset(routes) for r, routes in taken.items()}


def incident_from_campaign(db: Database, campaign_id: str) -> Incident:
    row = campaign_row(db, campaign_id)
    clients = campaign_clients(db, campaign_id)
    start, end = float(row["first_seen"]), float(row["last_seen"])  # type: ignore[arg-type]
    entries = window_entries(Ledger(db), clients, start, end)
    return Incident(
        id="inc-" + campaign_id.removeprefix("cmp-"), title=f"Scraping campaign {row['label']}",
        start=start, end=end, taken=taken_records(db, entries, clients, start, end),
        source=f"campaign {campaign_id}",
        notes=(f"{len(clients)} clients; {len(entries)} ledger window summaries",),
    )


def incident_from_range(db: Database, start: float, end: float) -> Incident:
    if end <= start:
        raise LegalError("the end of the range must be after its start")
    ledger = Ledger(db)
    flagged: set[str] = set()
    for entry in ledger.entries(kind="window", since=start):
        w0, w1 = entry.body.get("window", [math.inf, -math.inf])
        if w1 >= start and w0 <= end and set(entry.body.get("actions", {})) - {"allow"}:
            flagged.add(entry.subject)
    with db.engine.connect() as conn:
        flagged.update(conn.execute(select(EventRow.client).distinct().where(
            EventRow.ts >= start, EventRow.ts <= end, EventRow.action != "allow")).scalars())
        flagged.update(conn.execute(select(CampaignMemberRow.client).distinct().where(
            CampaignMemberRow.last_seen >= start, CampaignMemberRow.first_seen <= end)).scalars())
    clients = sorted(flagged)
    entries = window_entries(ledger, clients, start, end)
    digest = hashlib.sha256(f"{start}:{end}".encode()).hexdigest()[:12]
    return Incident(
        id=f"inc-range-{digest}", title=f"Scraping between {when(start)} and {when(end)}",
        start=start, end=end, taken=taken_records(db, entries, clients, start, end),
        source=f"range {when(start)} - {when(end)}",
        notes=(f"{len(clients)} flagged clients; {len(entries)} ledger window summaries",),
    )
