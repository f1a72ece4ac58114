"""What each kind of alert rule looks at. A finding carries the key that de-duplicates it:
the rule, the thing it is about, and the period (one window) it fell in."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from scrapeshield.console.queries import CLIENT
from scrapeshield.db.models import CampaignRow, EventRow

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield


@dataclass(frozen=True, slots=True)
class Finding:
    dedup: str
    title: str
    detail: dict[str, Any] = field(default_factory=dict)


def evaluate(shield: Shield, rule: dict[str, Any], now: float) -> list[Finding]:
    kind, threshold, window = rule["kind"], float(rule["threshold"]), float(rule["window"])
    since = now - window
    period = int(now // window)
    base = f"{rule['id']}:{kind}"
    engine = shield.db.engine
    if kind == "rate":
        refused = (select(func.count()).select_from(EventRow)
                   .where(EventRow.ts >= since, EventRow.action != "allow"))
        with engine.connect() as conn:
            count = int(conn.execute(refused).scalar_one())
        if count < threshold:
            return []
        return [Finding(f"{base}:{period}", f"{rule['name']}: {count} refused requests in "
                        f"{int(window)} s (threshold {threshold:g})",
                        {"refused": count, "window": window, "threshold": threshold})]
    if kind == "score":
        scored = (select(CLIENT, func.max(EventRow.score), func.count())
                  .where(EventRow.ts >= since, EventRow.score >= threshold)
                  .group_by(CLIENT).order_by(func.max(EventRow.score).desc()).limit(20))
        with engine.connect() as conn:
            rows = conn.execute(scored).all()
        return [Finding(f"{base}:{client}:{period}", f"{rule['name']}: client {client} scored "
                        f"{score:.0f} ({n} events)", {"client": client, "score": score, "events": n})
                for client, score, n in rows]
    if kind == "new_campaign":
        fresh = (select(CampaignRow.id, CampaignRow.label, CampaignRow.score, CampaignRow.clients,
                        CampaignRow.records)
                 .where(CampaignRow.first_seen >= max(since, float(rule["created_at"]) - window),
                        CampaignRow.last_seen >= since, CampaignRow.score >= threshold).limit(20))
        with engine.connect() as conn:
            found = conn.execute(fresh).all()
        return [Finding(f"{base}:{cid}", f"{rule['name']}: new campaign {label} ({clients} clients, "
                        f"{records} records, score {score:.0f})",
                        {"campaign": cid, "label": label, "score": score, "clients": clients,
                         "records": records})
                for cid, label, score, clients, records in found]
    if kind == "records":
        monitor = getattr(shield, "monitor", None)
        served = monitor.records_served(since) if monitor is not None else 0
        if served < threshold:
            return []
        return [Finding(f"{base}:{period}", f"{rule['name']}: {served} distinct personal records "
                        f"served in one minute (threshold {threshold:g})",
                        {"records_per_minute": served, "threshold": threshold})]
    return []
