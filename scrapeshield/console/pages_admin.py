"""Admin and oversight pages: users, policy, live lists, the audit trail."""

from __future__ import annotations

import json

import yaml
from starlette.requests import Request
from starlette.responses import Response

from scrapeshield.console.roles import Role
from scrapeshield.console.users import UserError
from scrapeshield.console.web import PREFIX, Console


def install(console: Console) -> None:
    shield = console.shield

    @console.route(f"{PREFIX}/users", "admin")
    async def users_page(request: Request) -> Response:
        return console.render(request, "users.html", users=console.users.all(), roles=[r.value for r in Role],
                              now=console.now())

    @console.route(f"{PREFIX}/users/add", "admin", methods=("POST",))
    async def users_add(request: Request) -> Response:
        form = await request.form()
        try:
            user = console.users.add(str(form.get("username", "")), str(form.get("role", "")),
                                     str(form.get("password", "")), console.now())
        except UserError as exc:
            return console.error(request, 400, str(exc), True)
        console.audit(request, "user.add", {"user": user.username, "role": user.role.value})
        return console.back(f"{PREFIX}/users", f"user {user.username} added")

    @console.route(f"{PREFIX}/users/{{username}}/update", "admin", methods=("POST",))
    async def users_update(request: Request) -> Response:
        name = request.path_params["username"][:64]
        form = await request.form()
        detail: dict[str, object] = {"user": name}
        try:
            if form.get("role"):
                console.users.set_role(name, str(form["role"]))
                detail["role"] = str(form["role"])
            if form.get("password"):
                console.users.set_password(name, str(form["password"]))
                detail["password"] = "reset"
            if form.get("disabled") in ("0", "1"):
                console.users.set_disabled(name, form["disabled"] == "1")
                detail["disabled"] = form["disabled"] == "1"
        except UserError as exc:
            return console.error(request, 400, str(exc), True)
        if len(detail) > 1:
            console.sessions.end_all(name)  # a changed role, password or access signs them out
            console.audit(request, "user.update", detail)
        return console.back(f"{PREFIX}/users", f"user {name} updated")

    @console.route(f"{PREFIX}/policy", "admin")
    async def policy_page(request: Request) -> Response:
        text = yaml.safe_dump(shield.policy.source.model_dump(mode="json"), sort_keys=False)
        return console.render(request, "policy.html", policy=text,
                              source=str(shield.settings.policy_path or "(embedded default policy)"))

    @console.route(f"{PREFIX}/policy/reload", "admin", methods=("POST",))
    async def policy_reload(request: Request) -> Response:
        problems = shield.reload()
        console.audit(request, "policy.reload", {"ok": not problems, "problems": problems[:20]})
        if problems:
            return console.error(request, 422, "policy not reloaded: " + "; ".join(problems), True)
        return console.back(f"{PREFIX}/policy", "policy reloaded")

    @console.route(f"{PREFIX}/lists", "view")
    async def lists_page(request: Request) -> Response:
        now = console.now()
        entries = [e for e in shield.engine.lists.entries() if not e.expires or e.expires > now]
        return console.render(request, "lists.html", entries=entries, now=now)

    @console.route(f"{PREFIX}/lists/remove", "act", methods=("POST",))
    async def lists_remove(request: Request) -> Response:
        form = await request.form()
        kind, value = str(form.get("kind", "")), str(form.get("value", ""))
        removed = shield.engine.lists.remove(kind, value)
        shield.db.remove_list_entry(kind, value, console.now())
        console.audit(request, "list.remove", {"kind": kind, "value": value[:200], "removed": removed})
        return console.back(f"{PREFIX}/lists", "entry removed" if removed else "no such live entry")

    @console.route(f"{PREFIX}/audit", "audit")
    async def audit_page(request: Request) -> Response:
        entries = shield.db.audit_trail(500)
        for entry in entries:
            entry["detail_text"] = json.dumps(entry["detail"], sort_keys=True)
        return console.render(request, "audit.html", entries=entries)
