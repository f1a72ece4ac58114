"""What every console page and admin-API route goes through: who is asking, may they, CSRF.

``Console.route(path, permission)`` wraps a handler so that it refuses an anonymous request
(a sign-in redirect for a page, 401 for the API), a role without the permission (403), and
a state-changing request without the session's CSRF token or from another origin (403). The
wrapped endpoint carries its ``permission``, which the security tests read off the router so
that a new route cannot be added without one. The admin API's bearer token acts as ``admin``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from scrapeshield.console.roles import Role, allowed
from scrapeshield.console.sessions import COOKIE, Session, Sessions
from scrapeshield.console.users import Users

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield

log = logging.getLogger("scrapeshield.console")

Handler = Callable[[Request], Awaitable[Response]]
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
PREFIX = "/console"
TEMPLATES = Path(__file__).parent / "templates"
SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",  # no-referrer would make Chromium send "Origin: null" on posts
    "cache-control": "no-store",
}


class Console:
    """Shared by all console pages: the shield, the user and session stores, templates."""

    def __init__(self, shield: Shield, token: str) -> None:
        self.shield = shield
        self.token = token
        self.users = Users(shield.db.engine)
        self.sessions = Sessions(shield.db.engine)
        self.templates = Environment(
            loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(default=True),
            trim_blocks=True, lstrip_blocks=True,
        )
        self.templates.filters.update(_FILTERS)
        self.routes: list[Route] = []
        self._flash_key = shield.settings.derived_key("console-flash")

    def now(self) -> float:
        return self.shield.clock.now()

    # -- who is asking ---------------------------------------------------------------

    def identify(self, request: Request) -> Session | None:
        header = request.headers.get("authorization", "")
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and given:
            if hmac.compare_digest(given.encode(), self.token.encode()):
                return Session("admin-token", Role.ADMIN, "", via="token")
            return None
        return self.sessions.load(request.cookies.get(COOKIE, ""), self.now())

    async def refusal(self, request: Request, permission: str, page: bool) -> Response | None:
        """None when the request may go on; else the response that refuses it."""
        session = self.identify(request)
        if session is None:
            if page and request.method in SAFE_METHODS:
                target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
                return RedirectResponse(f"{PREFIX}/login?next={target}", status_code=303)
            return JSONResponse({"error": "sign in, or send the admin bearer token"}, status_code=401,
                                headers={"www-authenticate": "Bearer"})
        if not allowed(session.role, permission):
            return self.error(request, 403, f"your role ({session.role}) may not do this", page)
        if request.method not in SAFE_METHODS and session.via == "session":
            if not same_origin(request):
                return self.error(request, 403, "cross-origin request refused", page)
            given = request.headers.get("x-csrf-token", "")
            if not given and "form" in request.headers.get("content-type", ""):
                form = await request.form()
                given = str(form.get("csrf", ""))
            if not session.csrf_ok(given):
                return self.error(request, 403, "missing or wrong CSRF token", page)
        request.state.session = session
        return None

    def route(self, path: str, permission: str, methods: tuple[str, ...] = ("GET",),
              page: bool = True) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.routes.append(Route(path, self.guard(handler, permission, page), methods=list(methods)))
            return handler

        return register

    def guard(self, handler: Handler, permission: str, page: bool = False, write: str = "") -> Handler:
        """``permission`` for every method, or for reads only when ``write`` names another one
        for state-changing methods (one handler serving GET and POST)."""
        async def guarded(request: Request) -> Response:
            needed = write if write and request.method not in SAFE_METHODS else permission
            refused = await self.refusal(request, needed, page)
            if refused is not None:
                return refused
            try:
                response = await handler(request)
            except ValueError as exc:  # bad input reaching a store: a clear 400, no traceback
                return self.error(request, 400, str(exc), page)
            return secure(response)

        guarded.permission = permission  # type: ignore[attr-defined]
        guarded.write_permission = write or permission  # type: ignore[attr-defined]
        guarded.__name__ = handler.__name__
        return guarded

    # -- answers -----------------------------------------------------------------------

    def render(self, request: Request, template: str, http_status: int = 200, **values: Any) -> Response:
        session: Session | None = getattr(request.state, "session", None)
        html = self.templates.get_template(template).render(
            session=session, prefix=PREFIX, path=request.url.path, can=_can(session),
            flash=self._flash(request), **values)
        return secure(HTMLResponse(html, status_code=http_status))

    def back(self, path: str, message: str) -> Response:
        """Redirect after a change, with a message the next page shows. The message is signed,
        so a crafted link cannot make the console display text of someone else's choosing."""
        return RedirectResponse(f"{path}?done={quote(message)}&sig={self._sign(message)}", status_code=303)

    def _sign(self, message: str) -> str:
        return hmac.new(self._flash_key, message.encode(), hashlib.sha256).hexdigest()[:20]

    def _flash(self, request: Request) -> str:
        message = request.query_params.get("done", "")[:300]
        given = request.query_params.get("sig", "")
        return message if message and hmac.compare_digest(given, self._sign(message)) else ""

    def error(self, request: Request, status: int, message: str, page: bool) -> Response:
        if page and "text/html" in request.headers.get("accept", ""):
            return self.render(request, "error.html", http_status=status, message=message)
        return secure(JSONResponse({"error": message}, status_code=status))

    def audit(self, request: Request, action: str, detail: dict[str, Any]) -> None:
        self.shield.db.audit(self.now(), actor(request), action, detail)
        log.info("console action %s", action, extra={"actor": actor(request), "action": action})


def actor(request: Request) -> str:
    """Who the audit trail names: the signed-in user, or ``admin-token`` for the bearer token."""
    session: Session | None = getattr(request.state, "session", None)
    return session.username if session is not None else "?"


def same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser, or an old one: the CSRF token still has to match
    host = request.headers.get("host", "")
    return origin in (f"http://{host}", f"https://{host}")


def secure(response: Response) -> Response:
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def _can(session: Session | None) -> Callable[[str], bool]:
    return lambda permission: session is not None and allowed(session.role, permission)


def _when(ts: float | None) -> str:
    import datetime as dt

    if not ts:
        return "—"
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%d %H:%M:%S")


_FILTERS: dict[str, Callable[..., Any]] = {
    "when": _when,
    "tojson_attr": lambda value: json.dumps(value),
}
