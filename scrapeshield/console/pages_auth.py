"""Sign-in and sign-out. Sign-in is protected from cross-site posting by a double-submit token
(there is no session yet to hold one), slowed and locked per account by ``users.Users``, and
slowed per source address after ``IP_FREE`` failures from it (password spraying)."""

from __future__ import annotations

import hmac
import math
import secrets
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from scrapeshield.console.sessions import COOKIE, TTL
from scrapeshield.console.users import Outcome
from scrapeshield.console.web import PREFIX, Console, same_origin, secure

LOGIN_COOKIE = "ss_login"
IP_FREE = 20
IP_MAX_DELAY = 300.0
IP_TRACKED = 10_000


def secure_cookies(request: Request) -> bool:
    return request.url.scheme == "https"


def install(console: Console) -> None:
    failures: dict[str, tuple[int, float]] = {}  # source address → (failures, not before)

    def login_page(request: Request, status: int = 200, message: str = "") -> Response:
        token = secrets.token_urlsafe(24)
        response = console.render(request, "login.html", http_status=status, message=message,
                                  login_csrf=token, next=_next(request.query_params.get("next", "")))
        response.set_cookie(LOGIN_COOKIE, token, httponly=True, samesite="strict",
                            secure=secure_cookies(request), path=PREFIX + "/login", max_age=3600)
        return response

    async def login(request: Request) -> Response:
        if request.method == "GET":
            return login_page(request)
        form = await request.form()
        given = str(form.get("login_csrf", ""))
        expected = request.cookies.get(LOGIN_COOKIE, "")
        if not same_origin(request) or not expected or not hmac.compare_digest(given, expected):
            return login_page(request, 403, "The sign-in form expired; please try again.")
        peer = request.client.host if request.client else "?"
        now = console.now()
        count, not_before = failures.get(peer, (0, 0.0))
        if not_before > now:
            response = login_page(request, 429, f"Too many failed sign-ins from your address; wait "
                                                f"{int(not_before - now) + 1} s.")
            response.headers["retry-after"] = str(int(not_before - now) + 1)
            return response
        username = str(form.get("username", ""))[:64]
        result = console.users.sign_in(username, str(form.get("password", ""))[:1024], now)
        monitor = getattr(console.shield, "monitor", None)
        if monitor is not None:
            monitor.signins[result.outcome.value] = monitor.signins.get(result.outcome.value, 0) + 1
        if result.outcome is not Outcome.OK or result.user is None:
            if result.outcome is Outcome.WRONG:
                count += 1
                delay = min(IP_MAX_DELAY, 2.0 ** (count - IP_FREE)) if count >= IP_FREE else 0.0
                if len(failures) >= IP_TRACKED:
                    failures.clear()
                failures[peer] = (count, now + delay)
            console.shield.db.audit(now, username.strip().lower() or "?", "signin.failed",
                                    {"outcome": result.outcome.value})
            return _refused(login_page, request, result.outcome, result.retry_after)
        failures.pop(peer, None)
        token = console.sessions.create(result.user.username, now)
        console.shield.db.audit(now, result.user.username, "signin", {"role": result.user.role.value})
        response = RedirectResponse(_next(str(form.get("next", ""))), status_code=303)
        response.set_cookie(COOKIE, token, httponly=True, samesite="strict", max_age=int(TTL),
                            secure=secure_cookies(request), path="/")
        response.delete_cookie(LOGIN_COOKIE, path=PREFIX + "/login")
        return secure(response)

    async def logout(request: Request) -> Response:
        token = request.cookies.get(COOKIE, "")
        console.sessions.end(token)
        console.audit(request, "signout", {})
        response = RedirectResponse(f"{PREFIX}/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    from starlette.routing import Route

    public_login = Route(f"{PREFIX}/login", login, methods=["GET", "POST"])
    public_login.endpoint.public = True  # type: ignore[attr-defined]
    console.routes.append(public_login)
    console.route(f"{PREFIX}/logout", "note", methods=("POST",))(logout)


def _refused(page, request: Request, outcome: Outcome, retry_after: float) -> Response:  # type: ignore[no-untyped-def]
    wait = max(1, math.ceil(retry_after))
    if outcome is Outcome.LOCKED:
        response = page(request, 423, f"This account is locked after repeated failed sign-ins; try "
                                      f"again in {wait // 60 + 1} min or ask an admin to reset it.")
    elif outcome is Outcome.SLOWED:
        response = page(request, 429, f"Too many failed sign-ins; wait {wait} s before trying again.")
    else:
        response = page(request, 401, "Wrong user name or password.")
    if outcome is not Outcome.WRONG or retry_after:
        response.headers["retry-after"] = str(wait)
    return response  # type: ignore[no-any-return]


def _next(target: str) -> str:
    """Only a path inside the console (never another site) after sign-in."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not parts.path.startswith(PREFIX + "/") or "\\" in target:
        return PREFIX + "/"
    return target
