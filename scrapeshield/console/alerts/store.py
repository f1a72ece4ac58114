"""Alert rules, channels, raised alerts and their deliveries, in the database.

An alert's ``dedup`` key is unique, so the same condition in the same period is raised once,
also when several nodes evaluate the rules against one database.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine, insert, select, update
from sqlalchemy.exc import IntegrityError

from scrapeshield.db.models import AlertChannelRow, AlertDeliveryRow, AlertRow, AlertRuleRow

RULE_KINDS = {
    "rate": "refused requests (every action but allow) in the window ≥ threshold",
    "score": "a client scored ≥ threshold in the window",
    "new_campaign": "a new campaign with a score ≥ threshold appeared",
    "records": "distinct personal records served in one minute ≥ threshold",
}
CHANNEL_KINDS = ("webhook", "slack", "email")


class AlertConfigError(ValueError):
    pass


def check_channel(kind: str, target: str) -> str:
    target = target.strip()
    parts = urlsplit(target)
    if kind in ("webhook", "slack"):
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise AlertConfigError("a webhook target is an http:// or https:// URL")
    elif kind == "email":
        if parts.scheme not in ("smtp", "smtps", "smtp+starttls") or not parts.hostname \
                or "@" not in parts.path:
            raise AlertConfigError("an e-mail target is smtp://host:port/to@example.org[?from=…] "
                                   "(smtps:// or smtp+starttls:// for TLS)")
    else:
        raise AlertConfigError(f"channel kind must be one of {', '.join(CHANNEL_KINDS)}")
    return target


class AlertStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    # -- configuration ----------------------------------------------------------------

    def add_rule(self, name: str, kind: str, threshold: float, window: float, actor: str, now: float) -> int:
        if kind not in RULE_KINDS:
            raise AlertConfigError(f"rule kind must be one of {', '.join(RULE_KINDS)}")
        if not name.strip() or threshold < 0 or not 60 <= window <= 7 * 86400:
            raise AlertConfigError("a rule needs a name, a threshold ≥ 0 and a window of 60 s to 7 days")
        with self.engine.begin() as conn:
            return int(conn.execute(insert(AlertRuleRow).values(
                name=name.strip()[:100], kind=kind, threshold=threshold, window=window, enabled=1,
                created_by=actor, created_at=now)).inserted_primary_key[0])  # type: ignore[index]

    def add_channel(self, name: str, kind: str, target: str, now: float) -> int:
        target = check_channel(kind, target)
        if not name.strip():
            raise AlertConfigError("a channel needs a name")
        with self.engine.begin() as conn:
            return int(conn.execute(insert(AlertChannelRow).values(
                name=name.strip()[:100], kind=kind, target=target[:500], enabled=1,
                created_at=now)).inserted_primary_key[0])  # type: ignore[index]

    def set_enabled(self, table: str, row_id: int, enabled: bool) -> bool:
        if table not in ("rule", "channel"):
            raise AlertConfigError("rule or channel")
        model: type[AlertRuleRow | AlertChannelRow] = AlertRuleRow if table == "rule" else AlertChannelRow
        with self.engine.begin() as conn:
            return bool(conn.execute(update(model).where(model.id == row_id)
                                     .values(enabled=int(enabled))).rowcount)

    def rules(self, enabled_only: bool = False) -> list[dict[str, Any]]:
        query = select(AlertRuleRow).order_by(AlertRuleRow.id)
        if enabled_only:
            query = query.where(AlertRuleRow.enabled == 1)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def channels(self, enabled_only: bool = False) -> list[dict[str, Any]]:
        query = select(AlertChannelRow).order_by(AlertChannelRow.id)
        if enabled_only:
            query = query.where(AlertChannelRow.enabled == 1)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    # -- alerts and deliveries --------------------------------------------------------------

    def raise_alert(self, dedup: str, rule_id: int, title: str, detail: dict[str, Any],
                    now: float) -> int | None:
        """The new alert's id, with a pending delivery per enabled channel; None when raised before."""
        channels = self.channels(enabled_only=True)
        try:
            with self.engine.begin() as conn:
                alert_id = int(conn.execute(insert(AlertRow).values(
                    dedup=dedup[:200], rule_id=rule_id, ts=now, title=title[:300],
                    detail=json.dumps(detail))).inserted_primary_key[0])  # type: ignore[index]
                for channel in channels:
                    conn.execute(insert(AlertDeliveryRow).values(
                        alert_id=alert_id, channel_id=channel["id"], status="pending", attempts=0,
                        next_try=now, last_error="", sent_at=None))
        except IntegrityError:
            return None
        return alert_id

    def due(self, now: float, limit: int = 100) -> list[dict[str, Any]]:
        query = (select(AlertDeliveryRow, AlertRow.title, AlertRow.detail, AlertRow.dedup, AlertRow.ts,
                        AlertChannelRow.kind.label("channel_kind"), AlertChannelRow.target,
                        AlertChannelRow.name.label("channel_name"))
                 .join(AlertRow, AlertRow.id == AlertDeliveryRow.alert_id)
                 .join(AlertChannelRow, AlertChannelRow.id == AlertDeliveryRow.channel_id)
                 .where(AlertDeliveryRow.status == "pending", AlertDeliveryRow.next_try <= now)
                 .order_by(AlertDeliveryRow.next_try).limit(limit))
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(query).mappings()]

    def delivered(self, delivery_id: int, attempts: int, now: float) -> None:
        self._delivery(delivery_id, status="sent", attempts=attempts, sent_at=now, last_error="")

    def retry(self, delivery_id: int, attempts: int, next_try: float, error: str, give_up: bool) -> None:
        self._delivery(delivery_id, status="failed" if give_up else "pending", attempts=attempts,
                       next_try=next_try, last_error=error[:500])

    def _delivery(self, delivery_id: int, **values: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(update(AlertDeliveryRow).where(AlertDeliveryRow.id == delivery_id).values(**values))

    def recent(self, limit: int = 200) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            alerts = [dict(r) for r in conn.execute(
                select(AlertRow).order_by(AlertRow.id.desc()).limit(limit)).mappings()]
            ids = [a["id"] for a in alerts]
            deliveries = conn.execute(
                select(AlertDeliveryRow, AlertChannelRow.name.label("channel_name"))
                .join(AlertChannelRow, AlertChannelRow.id == AlertDeliveryRow.channel_id)
                .where(AlertDeliveryRow.alert_id.in_(ids))).mappings().all() if ids else []
        by_alert: dict[int, list[dict[str, Any]]] = {}
        for d in deliveries:
            by_alert.setdefault(d["alert_id"], []).append(dict(d))
        for alert in alerts:
            alert["detail"] = json.loads(alert["detail"])
            alert["deliveries"] = by_alert.get(alert["id"], [])
        return alerts

    def counts(self) -> dict[str, int]:
        """Deliveries by status, for /metrics."""
        from sqlalchemy import func

        with self.engine.connect() as conn:
            rows = conn.execute(select(AlertDeliveryRow.status, func.count())
                                .group_by(AlertDeliveryRow.status)).all()
        return {str(status): int(n) for status, n in rows}
