"""The live overview page and the JSON it polls, and search across clients, campaigns, cases.

Database reads run in the thread pool: the admin and the public server share one event loop."""

from __future__ import annotations

import ipaddress
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from scrapeshield.console import campaigns, queries
from scrapeshield.console.cases import Cases
from scrapeshield.console.web import PREFIX, Console

WINDOW = 900.0  # seconds the top lists look back


def overview_data(console: Console) -> dict[str, Any]:
    shield = console.shield
    now = console.now()
    engine = shield.db.engine  # the event writer flushes every 2 s: no flush on each poll
    floor = queries.recent_floor(engine)
    monitor = getattr(shield, "monitor", None)
    series = monitor.series(now) if monitor is not None else {}
    totals = monitor.requests_since(now - WINDOW) if monitor is not None else {}
    return {
        "now": now,
        "window": WINDOW,
        "series": series,
        "totals": totals,
        "top_clients": queries.top_clients(engine, now - WINDOW, floor=floor),
        "top_routes": queries.top_routes(engine, now - WINDOW, floor=floor),
        "top_campaigns": [
            {k: c[k] for k in ("id", "label", "kind", "clients", "requests", "records", "score",
                               "status", "action", "last_seen")}
            for c in campaigns.top(shield.db, now - 86400.0)
        ],
        "lists": len(shield.engine.lists),
    }


def search(console: Console, text: str) -> dict[str, Any]:
    """Clients, campaigns and cases for an IP (pseudonymised as events are), a network, an
    account, a fingerprint, a user-agent fragment, a campaign id or a case title."""
    shield = console.shield
    engine = shield.db.engine
    pseudo = shield.policy.source.events.pseudonymise_ips  # as the stored events hold them
    traits: dict[str, str] = {}
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        address = None
    if address is not None:
        prefix = 24 if address.version == 4 else 48
        network = str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
        traits["client"] = shield.pseudonymise(str(address)) if pseudo else str(address)
        traits["network"] = shield.pseudonymise(network) if pseudo else network
    elif "/" in text:
        try:
            net = str(ipaddress.ip_network(text, strict=False))
            traits["network"] = shield.pseudonymise(net) if pseudo else net
        except ValueError:
            traits["user_agent"] = text
    elif text.startswith("p:"):
        traits["client"] = text
        traits["network"] = text
    else:
        traits.update(account=text, fingerprint=text, user_agent=text)
    clients = queries.search_clients(engine, traits)
    found_campaigns = {c["id"]: c for c in campaigns.find(engine, text)}
    for c in campaigns.of_clients(engine, [r["client"] for r in clients]):
        found_campaigns.setdefault(c["id"], c)
    store = Cases(engine)
    found_cases = {c["id"]: c for c in store.find(text)}
    refs = [r["client"] for r in clients] + list(found_campaigns)
    for c in store.for_refs(refs):
        found_cases.setdefault(c["id"], c)
    return {"traits": sorted(traits), "clients": clients, "campaigns": list(found_campaigns.values()),
            "cases": list(found_cases.values())}


def install(console: Console) -> None:
    @console.route(f"{PREFIX}/", "view")
    async def overview(request: Request) -> Response:
        return console.render(request, "overview.html", data=await run_in_threadpool(overview_data, console))

    @console.route(f"{PREFIX}/api/overview", "view", page=False)
    async def overview_json(request: Request) -> Response:
        return JSONResponse(await run_in_threadpool(overview_data, console))

    @console.route(f"{PREFIX}/search", "view")
    async def search_page(request: Request) -> Response:
        text = request.query_params.get("q", "").strip()[:200]
        results = await run_in_threadpool(search, console, text) if text else None
        return console.render(request, "search.html", q=text, results=results)
