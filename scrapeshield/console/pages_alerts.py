"""Alerts: every alert raised with its deliveries; rules and channels (set by admins)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scrapeshield.console.alerts.store import CHANNEL_KINDS, RULE_KINDS, AlertConfigError, AlertStore
from scrapeshield.console.web import PREFIX, Console


def _number(text: object, name: str) -> float:
    try:
        return float(str(text))
    except ValueError:
        raise AlertConfigError(f"{name} must be a number") from None


def install(console: Console) -> None:
    store = AlertStore(console.shield.db.engine)

    @console.route(f"{PREFIX}/alerts", "view")
    async def alerts_page(request: Request) -> Response:
        return console.render(request, "alerts.html", alerts=store.recent(), rules=store.rules(),
                              channels=store.channels(), rule_kinds=RULE_KINDS, channel_kinds=CHANNEL_KINDS)

    @console.route(f"{PREFIX}/alerts/rules", "admin", methods=("POST",))
    async def add_rule(request: Request) -> Response:
        form = await request.form()
        rid = store.add_rule(str(form.get("name", "")), str(form.get("kind", "")),
                             _number(form.get("threshold", ""), "threshold"),
                             _number(form.get("window", "300"), "window"),
                             request.state.session.username, console.now())
        console.audit(request, "alert.rule.add", {"rule": rid, "kind": str(form.get("kind"))})
        return console.back(f"{PREFIX}/alerts", "rule added")

    @console.route(f"{PREFIX}/alerts/channels", "admin", methods=("POST",))
    async def add_channel(request: Request) -> Response:
        form = await request.form()
        cid = store.add_channel(str(form.get("name", "")), str(form.get("kind", "")),
                                str(form.get("target", "")), console.now())
        console.audit(request, "alert.channel.add", {"channel": cid, "kind": str(form.get("kind"))})
        return console.back(f"{PREFIX}/alerts", "channel added")

    @console.route(f"{PREFIX}/alerts/toggle", "admin", methods=("POST",))
    async def toggle(request: Request) -> Response:
        form = await request.form()
        table, enabled = str(form.get("what", "")), form.get("enabled") == "1"
        row_id = int(_number(form.get("id", ""), "id"))
        if not store.set_enabled(table, row_id, enabled):
            return console.error(request, 404, f"no {table} {row_id}", True)
        console.audit(request, f"alert.{table}.{'enable' if enabled else 'disable'}", {"id": row_id})
        return console.back(f"{PREFIX}/alerts", "saved")
