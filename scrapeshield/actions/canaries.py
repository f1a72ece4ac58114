"""Where decoy canaries are remembered, and how one is looked up.

The request path only appends to a bounded list; a shield job (``flush``, every few
seconds) writes the batch. A canary already stored (the same client reading the same
record again) is not written twice. Lookups name the client by pseudonym, never by address.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.exc import SQLAlchemyError

from scrapeshield.actions.decoy import normalise_canary
from scrapeshield.db.clean import clean_text
from scrapeshield.db.models import CampaignMemberRow, CampaignRow, CanaryRow
from scrapeshield.db.store import Database

log = logging.getLogger("scrapeshield.canaries")

MAX_PENDING = 100_000
_LENGTHS = {"value": 120, "kind": 16, "client": 64, "network": 64, "fingerprint": 32,
            "account": 128, "record": 160, "route": 64, "user_agent": 512}


@dataclass(frozen=True, slots=True)
class Planted:
    value: str
    kind: str
    client: str
    network: str
    fingerprint: str
    account: str
    record: str
    route: str
    user_agent: str
    ts: float


class CanaryLog:
    def __init__(self, db: Database) -> None:
        self.db = db
        self._pending: dict[str, Planted] = {}
        self._lock = threading.Lock()
        self.dropped = 0
        self.written = 0
        self.purged = 0

    def add(self, planted: Planted) -> None:
        with self._lock:
            if planted.value in self._pending:
                return
            if len(self._pending) >= MAX_PENDING:
                self.dropped += 1
                return
            self._pending[planted.value] = planted

    def flush(self) -> None:
        with self._lock:
            batch, self._pending = self._pending, {}
        if not batch:
            return
        try:
            with self.db.engine.begin() as conn:
                known = set(conn.scalars(select(CanaryRow.value).where(CanaryRow.value.in_(list(batch)))))
                rows = [_row(p) for value, p in batch.items() if value not in known]
                if rows:
                    conn.execute(insert(CanaryRow), rows)
            self.written += len(rows)
        except SQLAlchemyError:
            log.warning("writing %d canaries failed; they are retried", len(batch), exc_info=True)
            with self._lock:
                for value, planted in batch.items():
                    if len(self._pending) < MAX_PENDING:
                        self._pending.setdefault(value, planted)

    def purge(self, before: float) -> None:
        """Delete the canaries planted before ``before`` (the shield's retention job)."""
        try:
            with self.db.engine.begin() as conn:
                gone = conn.execute(delete(CanaryRow).where(CanaryRow.ts < before)).rowcount
        except SQLAlchemyError:
            log.warning("deleting expired canaries failed; tried again at the next turn", exc_info=True)
            return
        if gone:
            self.purged += gone
            log.info("canaries: %d past the retention period deleted", gone)


def _row(planted: Planted) -> dict[str, Any]:
    row: dict[str, Any] = {"ts": planted.ts}
    for name, length in _LENGTHS.items():
        row[name] = clean_text(str(getattr(planted, name)), length)
    return row


def lookup(db: Database, value: str) -> dict[str, Any] | None:
    """Who received a canary: client pseudonym, network, fingerprint, time, campaigns."""
    wanted = normalise_canary(value)
    with db.engine.connect() as conn:
        row = conn.execute(select(CanaryRow).where(CanaryRow.value == wanted)).mappings().first()
        if row is None:
            return None
        found = {k: row[k] for k in ("value", "kind", "client", "network", "fingerprint", "account",
                                     "record", "route", "user_agent", "ts")}
        campaigns = conn.execute(
            select(CampaignRow.id, CampaignRow.kind, CampaignRow.label, CampaignRow.score)
            .join(CampaignMemberRow, CampaignMemberRow.campaign_id == CampaignRow.id)
            .where(CampaignMemberRow.client == row["client"])
        ).mappings().all()
        found["campaigns"] = [dict(c) for c in campaigns]
        others = conn.execute(
            select(CanaryRow.value).where(CanaryRow.client == row["client"]).limit(1001)
        ).scalars().all()
        found["canaries_of_client"] = len(others)
    return found


def describe(found: dict[str, Any]) -> str:
    """Human-readable lines for the CLI."""
    lines = [f"{found['kind']} canary {found['value']}",
             f"  given to client {found['client']} (network {found['network']})",
             f"  fingerprint {found['fingerprint']}, user-agent {found['user_agent']!r}",
             f"  account {found['account'] or '(signed out)'}",
             f"  standing in for record {found['record']} on route {found['route']}",
             f"  at {found['ts']:.0f} (unix time); this client received "
             f"{found['canaries_of_client']} canary value(s) in all"]
    if found["campaigns"]:
        for c in found["campaigns"]:
            lines.append(f"  campaign {c['id']} ({c['kind']}: {c['label']}, score {c['score']:g})")
    else:
        lines.append("  campaign: none recorded for this client yet")
    return "\n".join(lines)


def as_json(found: dict[str, Any]) -> str:
    return json.dumps(found, indent=2, sort_keys=True)
