"""The ledger's periodic job: closed windows (``collector``), new audit rows and changed
campaign states → ledger entries; and a signed checkpoint of the head.

Audit rows and campaign states carry a ``ref`` and are read under the append lock, so with
many nodes running this job against one database each goes in once.
"""

from __future__ import annotations

import json
import logging
import math

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import Connection, select

from scrapeshield.clock import Clock
from scrapeshield.db.models import AuditRow, CampaignMemberRow, CampaignRow
from scrapeshield.legal.collector import WindowCollector
from scrapeshield.legal.ledger import Ledger, NewEntry

log = logging.getLogger("scrapeshield.legal")

MAX_PENDING = 500_000  # window summaries kept while the database refuses them


class LedgerFeeder:
    """The periodic job: closed windows, new audit rows and campaign states → ledger; checkpoint."""

    def __init__(self, ledger: Ledger, collector: WindowCollector | None, key: Ed25519PrivateKey,
                 clock: Clock, *, checkpoint_every: float = 600.0) -> None:
        self.ledger = ledger
        self.collector = collector
        self.key = key
        self.clock = clock
        self.checkpoint_every = checkpoint_every
        self._last_checkpoint = -math.inf
        self._audit_mark = 0
        self._campaign_mark = 0.0
        self._audit_seen = 0
        self._campaign_seen = 0.0
        self.pending: list[NewEntry] = []
        self.dropped = 0

    def run(self, final: bool = False) -> int:
        now = self.clock.now()
        written = 0
        if self.collector is not None:
            # Drained windows wait here until an append commits (the database may be down);
            # bounded: beyond MAX_PENDING the oldest are dropped, logged and counted.
            self.pending += self.collector.drain(None if final else now)
            if len(self.pending) > MAX_PENDING:
                lost = len(self.pending) - MAX_PENDING
                self.dropped += lost
                log.error("ledger: %d window summaries dropped, the database refused them too long", lost)
                del self.pending[:lost]
            if self.pending:
                written += len(self.ledger.append(self.pending, now))
                self.pending = []
        # Marks advance only once the append committed: a retried transaction reads again.
        written += len(self.ledger.append(self._audit_entries, now))
        self._audit_mark = self._audit_seen
        written += len(self.ledger.append(self._campaign_entries, now))
        self._campaign_mark = self._campaign_seen
        if final or now - self._last_checkpoint >= self.checkpoint_every:
            if self.ledger.checkpoint(self.key, now) is not None or final:
                self._last_checkpoint = now
        return written

    def _audit_entries(self, conn: Connection) -> list[NewEntry]:
        rows = conn.execute(
            select(AuditRow).where(AuditRow.id > self._audit_mark).order_by(AuditRow.id).limit(5000)
        ).mappings().all()
        entries = []
        self._audit_seen = self._audit_mark
        for row in rows:
            try:
                detail = json.loads(row["detail"])
            except ValueError:
                detail = {"raw": row["detail"]}
            entries.append(NewEntry("audit", str(row["actor"])[:64], {
                "audit_id": row["id"], "at": row["ts"], "actor": row["actor"],
                "action": row["action"], "detail": detail}, ref=f"audit:{row['id']}"))
            self._audit_seen = max(self._audit_seen, int(row["id"]))
        return entries

    def _campaign_entries(self, conn: Connection) -> list[NewEntry]:
        rows = conn.execute(
            select(CampaignRow).where(CampaignRow.updated_at > self._campaign_mark)
            .order_by(CampaignRow.updated_at).limit(1000)
        ).mappings().all()
        entries = []
        self._campaign_seen = self._campaign_mark
        for row in rows:
            members = conn.execute(
                select(CampaignMemberRow.client).where(CampaignMemberRow.campaign_id == row["id"])
                .order_by(CampaignMemberRow.client).limit(5000)
            ).scalars().all()
            try:
                reasons = json.loads(row["reasons"])
            except ValueError:
                reasons = [row["reasons"]]
            body = {k: row[k] for k in ("id", "kind", "key", "label", "first_seen", "last_seen",
                                        "clients", "requests", "records", "score", "status",
                                        "action", "updated_at")}
            body["reasons"] = reasons
            body["members"] = list(members)
            entries.append(NewEntry("campaign", str(row["id"]), body,
                                    ref=f"{row['id']}@{row['updated_at']!r}"))
            self._campaign_seen = max(self._campaign_seen, float(row["updated_at"]))
        return entries
