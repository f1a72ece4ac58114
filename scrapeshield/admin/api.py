"""Admin API (JSON: policy, decisions, top clients, lists) and the console, on the admin address.

Role-based: the bearer token acts as admin (scripts); a console session acts as its user's
role. A route added here takes ``guard(handler, permission)``; the default is admin only."""

from __future__ import annotations

from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from scrapeshield.console.app import console_routes
from scrapeshield.console.web import actor
from scrapeshield.lists import KINDS, ListEntry, normalise
from scrapeshield.metrics import registry_for
from scrapeshield.privacy.api import privacy_endpoint
from scrapeshield.runtime import Shield
from scrapeshield.types import Action

MAX_BODY = 16_384


class ListEntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: str = Field(pattern="^(" + "|".join(KINDS) + ")$")
    value: str = Field(min_length=1, max_length=200)
    action: str = Field(pattern="^(allow|block|challenge)$")
    ttl: float = Field(default=3600, ge=0, le=365 * 86400)  # seconds; 0 = never expires
    reason: str = Field(default="", max_length=500)


def create_admin_app(shield: Shield, token: str) -> Starlette:
    registry = registry_for(shield)

    # Every route names the permission it needs (console.roles): the bearer token acts as
    # admin, a console session by its user's role, with CSRF checked on state changes.
    console, console_pages = console_routes(shield, token)

    def guard(handler: Any, permission: str = "admin", write: str = "") -> Any:
        return console.guard(handler, permission, write=write)

    async def policy(request: Request) -> Response:
        return JSONResponse(shield.policy.source.model_dump(mode="json"))

    async def reload(request: Request) -> Response:
        problems = shield.reload()
        shield.db.audit(shield.clock.now(), actor(request), "policy.reload", {"ok": not problems})
        if problems:
            return JSONResponse({"ok": False, "problems": problems}, status_code=422)
        return JSONResponse({"ok": True})

    async def decisions(request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), 100, 1, 1000)
        action = request.query_params.get("action") or None
        shield.recorder.flush()
        return JSONResponse({"decisions": shield.db.recent_events(limit, action)})

    async def top_clients(request: Request) -> Response:
        window = _int(request.query_params.get("window"), 3600, 1, 30 * 86400)
        shield.recorder.flush()
        since = shield.clock.now() - window
        return JSONResponse({"clients": shield.db.top_clients(since)})

    async def lists(request: Request) -> Response:
        if request.method == "GET":
            return JSONResponse({"entries": [_entry_json(e) for e in shield.engine.lists.entries()]})
        if request.method == "DELETE":
            kind = request.query_params.get("kind", "")
            try:
                value = normalise(kind, request.query_params.get("value", ""))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
            removed = shield.engine.lists.remove(kind, value)
            shield.db.remove_list_entry(kind, value, shield.clock.now())
            shield.db.audit(shield.clock.now(), actor(request), "list.remove",
                            {"kind": kind, "value": value})
            return JSONResponse({"removed": removed}, status_code=200 if removed else 404)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"error": "body too large"}, status_code=413)
        try:
            data = ListEntryIn.model_validate_json(body)
            value = normalise(data.kind, data.value)
        except (ValidationError, ValueError) as exc:
            return JSONResponse({"error": _brief(exc)}, status_code=400)
        now = shield.clock.now()
        entry = ListEntry(data.kind, value, Action(data.action),
                          now + data.ttl if data.ttl else 0.0, data.reason, actor(request))
        shield.engine.lists.add(entry)
        shield.db.add_list_entry(entry, now)
        shield.db.audit(now, actor(request), "list.add", _entry_json(entry))
        return JSONResponse(_entry_json(entry), status_code=201)

    async def audit(request: Request) -> Response:
        limit = _int(request.query_params.get("limit"), 200, 1, 5000)
        return JSONResponse({"entries": shield.db.audit_trail(limit)})

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    return Starlette(
        routes=[
            Route("/api/policy", guard(policy, "view")),
            Route("/api/policy/reload", guard(reload, "admin"), methods=["POST"]),
            Route("/api/decisions", guard(decisions, "view")),
            Route("/api/clients/top", guard(top_clients, "view")),
            Route("/api/lists", guard(lists, "view", write="act"), methods=["GET", "POST", "DELETE"]),
            Route("/api/audit", guard(audit, "audit")),
            Route("/api/privacy", guard(privacy_endpoint(shield, actor), "view", write="admin"),
                  methods=["GET", "PUT", "POST"]),
            Route("/metrics", metrics),  # public on the admin address, for Prometheus
            Route("/healthz", healthz),
            *console_pages,
        ]
    )


def _entry_json(entry: ListEntry) -> dict[str, Any]:
    return {
        "kind": entry.kind, "value": entry.value, "action": entry.action.value,
        "expires": entry.expires, "reason": entry.reason, "created_by": entry.created_by,
    }


def _int(raw: str | None, default: int, low: int, high: int) -> int:
    try:
        return max(low, min(high, int(raw))) if raw is not None else default
    except ValueError:
        return default


def _brief(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
    return str(exc)
