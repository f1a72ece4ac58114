"""Drill-down: one client (by pseudonym) and one campaign, with their actions."""

from __future__ import annotations

from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from scrapeshield.campaigns.act import CampaignActionError, act_on_campaign
from scrapeshield.campaigns.store import set_campaign_action
from scrapeshield.console import campaigns, enforce, queries
from scrapeshield.console.cases import Cases
from scrapeshield.console.web import PREFIX, Console

TIMELINE = 100
TTLS = {"15m": 900.0, "1h": 3600.0, "24h": 86400.0, "7d": 7 * 86400.0, "30d": 30 * 86400.0, "never": 0.0}


def ttl_of(form: Any) -> float:
    value = str(form.get("ttl", "1h"))
    if value not in TTLS:
        raise enforce.EnforceError(f"expiry must be one of {', '.join(TTLS)}")
    return TTLS[value]


def _targets(monitor: Any, client: str, summary: dict[str, Any]) -> list[tuple[str, str, str]]:
    """What the client page offers to act on: (kind, value sent back, label)."""
    def known(value: str) -> bool:
        return enforce.is_address(value.split("/")[0]) or (
            monitor is not None and monitor.address_of(value) is not None)

    targets = []
    if known(client):
        targets.append(("ip", client, f"this client's address ({client})"))
    for network, _ in summary["networks"][:1]:
        if known(network):
            targets.append(("network", network, f"its network ({network})"))
    targets += [("fingerprint", fp, f"fingerprint {fp} ({n} events)")
                for fp, n in summary["fingerprints"][:3]]
    targets += [("account", acc, f"account {acc} ({n} events)") for acc, n in summary["accounts"][:3]]
    return targets


def install(console: Console) -> None:
    shield = console.shield
    engine = shield.db.engine

    def monitor() -> Any:
        return getattr(shield, "monitor", None)

    def client_view(client: str) -> dict[str, Any] | None:
        events = queries.client_events(engine, [client], queries.CLIENT_EVENTS)
        if not events:
            return None
        summary = queries.profile(events)
        return {"client": client, "summary": summary, "recent": events[:TIMELINE],
                "campaigns": campaigns.of_clients(engine, [client]),
                "cases": Cases(engine).for_refs([client]),
                "targets": _targets(monitor(), client, summary), "ttls": list(TTLS)}

    @console.route(f"{PREFIX}/clients/{{client}}", "view")
    async def client_page(request: Request) -> Response:
        client = request.path_params["client"][:64]
        view = await run_in_threadpool(client_view, client)  # off the loop the public port shares
        if view is None:
            return console.error(request, 404, f"no recorded events for client {client}", True)
        return console.render(request, "client.html", **view)

    @console.route(f"{PREFIX}/clients/{{client}}/act", "act", methods=("POST",))
    async def client_act(request: Request) -> Response:
        client = request.path_params["client"][:64]
        form = await request.form()
        kind, _, value = str(form.get("target", "")).partition("|")
        try:
            target = enforce.resolve(monitor(), kind, value)
            entries = enforce.apply(shield, [target], str(form.get("action", "")), ttl_of(form),
                                    str(form.get("reason", "")), request.state.session.username)
        except enforce.EnforceError as exc:
            return console.error(request, 400, str(exc), True)
        entry = entries[0]
        console.audit(request, "list.add", {"kind": entry.kind, "target": target.label, "client": client,
                                            "action": entry.action.value, "expires": entry.expires,
                                            "reason": entry.reason})
        return console.back(f"{PREFIX}/clients/{client}", f"{entry.action.value} on {kind} {target.label}")

    @console.route(f"{PREFIX}/campaigns", "view")
    async def campaign_list(request: Request) -> Response:
        status = request.query_params.get("status", "")[:16]
        return console.render(request, "campaigns.html", campaigns=campaigns.recent(shield.db, status=status),
                              status=status)

    def campaign_view(cid: str) -> dict[str, Any] | None:
        campaign = campaigns.get(shield.db, cid)
        if campaign is None:
            return None
        events = campaigns.events(shield.db, cid, queries.CLIENT_EVENTS)
        return {"campaign": campaign, "members": campaigns.members(shield.db, cid, limit=200),
                "summary": queries.profile(events), "recent": events[:TIMELINE],
                "cases": Cases(engine).for_refs([cid]), "ttls": list(TTLS)}

    @console.route(f"{PREFIX}/campaigns/{{cid}}", "view")
    async def campaign_page(request: Request) -> Response:
        cid = request.path_params["cid"][:40]
        view = await run_in_threadpool(campaign_view, cid)
        if view is None:
            return console.error(request, 404, f"no campaign {cid}", True)
        return console.render(request, "campaign.html", **view)

    @console.route(f"{PREFIX}/campaigns/{{cid}}/act", "act", methods=("POST",))
    async def campaign_act(request: Request) -> Response:
        """The campaign's trait, accounts and clear-text IPs (``campaigns.act``), plus the
        members known here only by pseudonym whose address this node still remembers."""
        cid = request.path_params["cid"][:40]
        campaign = campaigns.get(shield.db, cid)
        if campaign is None:
            return console.error(request, 404, f"no campaign {cid}", True)
        form = await request.form()
        action, reason = str(form.get("action", "")), str(form.get("reason", ""))
        actor = request.state.session.username
        try:
            ttl = ttl_of(form) or enforce.MAX_TTL
            enforce.check(action, ttl, reason)
        except enforce.EnforceError as exc:
            return console.error(request, 400, str(exc), True)
        listed = 0
        try:
            result = act_on_campaign(shield.db, cid, action=action, ttl=ttl, reason=reason, actor=actor,
                                     now=console.now(), lists=shield.engine.lists)
            listed = len(result.entries)
        except CampaignActionError as exc:
            problem = str(exc)
        else:
            problem = ""
        members = campaigns.members(shield.db, cid, limit=enforce.MAX_ENTRIES)
        extra = enforce.remembered(monitor(), [m["client"] for m in members])
        if campaign["kind"] == "network":  # a pseudonymised subnet: this node may know it
            extra += enforce.remembered_networks(monitor(), [str(campaign["key"])])
        if extra:
            enforce.apply(shield, extra, action, ttl, f"campaign {cid}: {reason}", actor)
            console.audit(request, "campaign.act", {"campaign": cid, "action": action, "ttl": ttl,
                                                    "reason": reason, "entries": len(extra),
                                                    "kinds": sorted({t.kind for t in extra}),
                                                    "via": "addresses remembered here"})
            set_campaign_action(shield.db, cid, action, "contained" if action != "allow" else "closed",
                                console.now())
        if not listed and not extra:
            return console.error(request, 409, problem or "nothing to list for this campaign", True)
        return console.back(f"{PREFIX}/campaigns/{cid}", f"{action}: {listed + len(extra)} list entries "
                                                  "for the campaign")

    @console.route(f"{PREFIX}/cases/open", "case", methods=("POST",))
    async def open_case(request: Request) -> Response:
        form = await request.form()
        links: list[tuple[str, str]] = []
        for kind in ("campaign", "client"):
            if form.get(kind):
                links.append((kind, str(form[kind])))
        cid = Cases(engine).open(str(form.get("title", "")), request.state.session.username, console.now(),
                                 assignee=str(form.get("assignee", "")), links=tuple(links))
        console.audit(request, "case.open", {"case": cid, "links": links})
        return console.back(f"{PREFIX}/cases/{cid}", "case opened")
