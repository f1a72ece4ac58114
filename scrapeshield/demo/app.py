"""The demo social network: a plain Starlette app that knows nothing of the shield.

Routes follow the contract in PRODUCT.md. Malformed input always ends in a 4xx:
handlers raise ``HTTPException`` and one handler renders it as JSON under
``/api/`` and as an HTML page elsewhere.
"""

from __future__ import annotations

import binascii
import hmac
import json
import random
import re
import secrets
import zlib
from base64 import urlsafe_b64decode, urlsafe_b64encode
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from scrapeshield.demo import pages
from scrapeshield.demo.population import HONEYPOT, HONEYPOT_USERNAME, DemoUser, Population

STATIC_DIR = Path(__file__).with_name("static")
PAGE_SIZE = 20
FEED_SIZE = 20
MAX_LOGIN_BODY = 16 * 1024
MAX_QUERY = 100
SESSION_COOKIE = "sid"
ROBOTS_TXT = "".join(f"{line}\n" for line in (
    "User-agent: *", "Disallow: /api/", "Disallow: /search", "Disallow: /login",
    f"Disallow: /u/{HONEYPOT_USERNAME}", "Allow: /"))
_CURSOR_CHARS = re.compile(r"[A-Za-z0-9_-]{1,64}")


class SessionStore:
    """Server-side sessions: cookie value ``"{user_id}.{token}"`` -> user id; bounded."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._sessions: dict[str, int] = {}

    def create(self, user_id: int) -> str:
        sid = f"{user_id}.{secrets.token_urlsafe(24)}"
        self._sessions[sid] = user_id
        while len(self._sessions) > self._limit:
            del self._sessions[next(iter(self._sessions))]
        return sid

    def user_id(self, sid: str | None) -> int | None:
        return self._sessions.get(sid) if sid else None

    def drop(self, sid: str | None) -> None:
        if sid:
            self._sessions.pop(sid, None)


def encode_cursor(kind: str, key: int, position: int) -> str:
    raw = f"{kind}:{key}:{position}".encode()
    return urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode_cursor(cursor: str | None, kind: str, key: int) -> int:
    """The position a cursor made by ``encode_cursor(kind, key, …)`` holds; 400 otherwise."""
    if not cursor:
        return 0
    if _CURSOR_CHARS.fullmatch(cursor):
        try:
            raw = urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        except (binascii.Error, ValueError):
            raw = ""
        found = re.fullmatch(rf"{kind}:{key}:(\d{{1,9}})", raw)
        if found:
            return int(found.group(1))
    raise HTTPException(400, "bad cursor")


def _search_key(q: str) -> int:
    return zlib.crc32(q.casefold().encode())


def _summary(user: DemoUser) -> dict[str, Any]:
    return {"id": user.id, "username": user.username, "name": user.name, "photo": user.photo}


def _query(request: Request) -> str:
    q = request.query_params.get("q", "").strip()
    if len(q) < 2:
        raise HTTPException(400, "q must be at least 2 characters")
    if len(q) > MAX_QUERY:
        raise HTTPException(400, f"q must be at most {MAX_QUERY} characters")
    return q


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def _wants_json(request: Request) -> bool:
    accept = request.headers.get("accept", "")
    return (request.url.path.startswith("/api/") or _media_type(request) == "application/json"
            or ("application/json" in accept and "text/html" not in accept))


async def _read_body(request: Request, cap: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not (declared.isascii() and declared.isdigit()) or len(declared) > 12):
        raise HTTPException(400, "bad content-length")
    if declared is not None and int(declared) > cap:
        raise HTTPException(413, "request body too large")
    body = bytearray()
    try:
        async for chunk in request.stream():
            body += chunk
            if len(body) > cap:
                raise HTTPException(413, "request body too large")
    except ClientDisconnect as exc:
        raise HTTPException(400, "client disconnected") from exc
    return bytes(body)


def _credentials(media_type: str, body: bytes) -> tuple[str, str]:
    data: Any
    try:
        if media_type == "application/json":
            data = json.loads(body)
        elif media_type in ("", "application/x-www-form-urlencoded"):
            parsed = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=20)
            data = {k: v[0] for k, v in parsed.items()}
        else:
            raise HTTPException(415, "send a form or JSON")
    except (ValueError, RecursionError) as exc:
        raise HTTPException(400, "malformed body") from exc
    username = data.get("username") if isinstance(data, dict) else None
    password = data.get("password") if isinstance(data, dict) else None
    if not isinstance(username, str) or not isinstance(password, str):
        raise HTTPException(400, "username and password are required")
    return username, password


class DemoSite:
    """Request handlers over one population and one session store."""

    def __init__(self, population: Population) -> None:
        self.population = population
        self.sessions = SessionStore()
        rng = random.Random(f"{population.seed}:feed")
        picks = rng.sample(range(1, len(population) + 1), min(FEED_SIZE, len(population)))
        self.feed = [(u, rng.choice(population.posts_of(i)))
                     for i in picks if (u := population.by_id(i)) is not None]

    def viewer(self, request: Request) -> DemoUser | None:
        user_id = self.sessions.user_id(request.cookies.get(SESSION_COOKIE))
        return None if user_id is None else self.population.by_id(user_id)

    def _by_name(self, username: str) -> DemoUser:
        user = HONEYPOT if username == HONEYPOT_USERNAME else self.population.by_username(username)
        if user is None:
            raise HTTPException(404, "no such profile")
        return user

    def _by_id(self, user_id: int) -> DemoUser:
        user = HONEYPOT if user_id == HONEYPOT.id else self.population.by_id(user_id)
        if user is None:
            raise HTTPException(404, "not found")
        return user

    def _followers(self, user: DemoUser, cursor: str | None) -> tuple[list[DemoUser], str | None]:
        ids = self.population.followers_of(user.id)
        start = decode_cursor(cursor, "f", user.id)
        if start > len(ids):
            raise HTTPException(400, "bad cursor")
        page = [u for i in ids[start:start + PAGE_SIZE] if (u := self.population.by_id(i))]
        end = start + PAGE_SIZE
        return page, encode_cursor("f", user.id, end) if end < len(ids) else None

    def _search(self, q: str, cursor: str | None) -> tuple[list[DemoUser], str | None]:
        key = _search_key(q)
        found = self.population.search(q, PAGE_SIZE + 1, after=decode_cursor(cursor, "s", key))
        if len(found) <= PAGE_SIZE:
            return found, None
        return found[:PAGE_SIZE], encode_cursor("s", key, found[PAGE_SIZE - 1].id)

    async def home(self, request: Request) -> Response:
        return HTMLResponse(pages.feed_page(self.feed, self.viewer(request)))

    async def profile(self, request: Request) -> Response:
        user = self._by_name(request.path_params["username"])
        posts = self.population.posts_of(user.id)
        count = self.population.followers_count(user.id)
        return HTMLResponse(pages.profile_page(user, posts, count, self.viewer(request)))

    async def followers_page(self, request: Request) -> Response:
        user = self._by_name(request.path_params["username"])
        page, nxt = self._followers(user, request.query_params.get("cursor"))
        return HTMLResponse(pages.followers_page(user, page, nxt, self.viewer(request)))

    async def search_page(self, request: Request) -> Response:
        if not request.query_params.get("q", "").strip():
            return HTMLResponse(pages.search_page("", [], None, self.viewer(request)))
        q = _query(request)
        found, nxt = self._search(q, request.query_params.get("cursor"))
        return HTMLResponse(pages.search_page(q, found, nxt, self.viewer(request)))

    async def api_user(self, request: Request) -> Response:
        user = self._by_id(request.path_params["user_id"])
        record = user.to_record()
        del record["password"]
        record["followers_count"] = self.population.followers_count(user.id)
        return JSONResponse(record)

    async def api_followers(self, request: Request) -> Response:
        user = self._by_id(request.path_params["user_id"])
        page, nxt = self._followers(user, request.query_params.get("cursor"))
        return JSONResponse({"followers": [_summary(u) for u in page], "next_cursor": nxt})

    async def api_search(self, request: Request) -> Response:
        found, nxt = self._search(_query(request), request.query_params.get("cursor"))
        return JSONResponse({"results": [_summary(u) for u in found], "next_cursor": nxt})

    async def avatar(self, request: Request) -> Response:
        svg = pages.avatar_svg(self._by_id(request.path_params["user_id"]))
        return Response(svg, media_type="image/svg+xml",
                        headers={"Cache-Control": "public, max-age=86400"})

    async def login(self, request: Request) -> Response:
        if request.method != "POST":
            return HTMLResponse(pages.login_page(self.viewer(request)))
        media_type = _media_type(request)
        username, password = _credentials(media_type, await _read_body(request, MAX_LOGIN_BODY))
        user = self.population.by_username(username)
        if user is None or not hmac.compare_digest(user.password.encode(), password.encode()):
            if media_type == "application/json":
                return JSONResponse({"error": "invalid credentials"}, status_code=401)
            page = pages.login_page(None, "Wrong username or password.")
            return HTMLResponse(page, status_code=401)
        sid = self.sessions.create(user.id)
        response = _done(media_type == "application/json", {"ok": True, "id": user.id})
        response.set_cookie(SESSION_COOKIE, sid, path="/", httponly=True, samesite="lax")
        return response

    async def logout(self, request: Request) -> Response:
        self.sessions.drop(request.cookies.get(SESSION_COOKIE))
        response = _done(_wants_json(request), {"ok": True})
        response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="lax")
        return response

    async def on_error(self, request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 500
        detail = exc.detail if isinstance(exc, HTTPException) else "internal error"
        headers = dict(exc.headers or {}) if isinstance(exc, HTTPException) else None
        if _wants_json(request):
            body = {"error": "not found" if status == 404 else detail}
            return JSONResponse(body, status_code=status, headers=headers)
        page = pages.error_page(status, detail, self.viewer(request))
        return HTMLResponse(page, status_code=status, headers=headers)

    def routes(self) -> list[BaseRoute]:
        return [
            Route("/", self.home),
            Route("/healthz", _healthz),
            Route("/robots.txt", _robots),
            Route("/search", self.search_page),
            Route("/login", self.login, methods=["GET", "POST"]),
            Route("/logout", self.logout, methods=["POST"]),
            Route("/u/{username}", self.profile),
            Route("/u/{username}/followers", self.followers_page),
            Route("/api/v1/users/{user_id:int}", self.api_user),
            Route("/api/v1/users/{user_id:int}/followers", self.api_followers),
            Route("/api/v1/search", self.api_search),
            Route("/static/avatars/{user_id:int}.svg", self.avatar),
            Mount("/static", StaticFiles(directory=STATIC_DIR), name="static"),
        ]


def _done(as_json: bool, payload: dict[str, Any]) -> Response:
    """A JSON answer for API clients, a redirect home for browsers."""
    return JSONResponse(payload) if as_json else RedirectResponse("/", status_code=303)


async def _healthz(request: Request) -> Response:
    return PlainTextResponse("ok")


async def _robots(request: Request) -> Response:
    return PlainTextResponse(ROBOTS_TXT)


def create_demo_app(population: Population) -> Starlette:
    """The demo social network over ``population`` as a Starlette ASGI app."""
    site = DemoSite(population)
    app = Starlette(routes=site.routes(), exception_handlers={HTTPException: site.on_error})
    app.state.site = site
    return app
