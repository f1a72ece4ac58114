"""The console and the admin API refuse whoever may not: anonymous requests, roles without the
permission, state changes without the session's CSRF token or from another origin; session
cookies are HttpOnly, SameSite and Secure over https; guessing passwords is slowed then locked;
text from traffic is shown escaped. Routes are read off the admin app's router, so a route
added later without a permission fails here."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_client import PASSWORD, ROLES, TOKEN, client, csrf_of, make_shield, sign_in
from starlette.routing import Mount, Route

from scrapeshield.clock import ManualClock
from scrapeshield.console.roles import allowed
from scrapeshield.console.sessions import Sessions
from scrapeshield.runtime import Shield

PUBLIC_PATHS = {"/metrics", "/healthz"}  # Prometheus and liveness, on the admin address only
SAMPLE = {"client": "p:0123456789abcdef01234567", "cid": "cmp-none", "case": "1", "username": "analyst1"}
UNSAFE = ("POST", "PUT", "PATCH", "DELETE")


@pytest.fixture
def shield(tmp_path: Path) -> Iterator[Shield]:
    s = make_shield(tmp_path)
    yield s
    s.close()


def guarded_routes(shield: Shield) -> list[tuple[str, str, str]]:
    """(method, path, permission) of every route of the admin app; fails on an unguarded one."""
    from console_client import TestClient  # noqa: F401 - same warnings filter

    from scrapeshield.admin.api import create_admin_app

    app = create_admin_app(shield, TOKEN)
    found = []
    for route in app.routes:
        if isinstance(route, Mount):
            assert getattr(route, "public", False), f"mount {route.path} is neither guarded nor public"
            continue
        assert isinstance(route, Route)
        endpoint = route.endpoint
        if route.path in PUBLIC_PATHS or getattr(endpoint, "public", False):
            continue
        assert hasattr(endpoint, "permission"), f"route {route.path} has no permission"
        path = route.path
        for name, value in SAMPLE.items():
            path = path.replace("{" + name + "}", value)
        assert "{" not in path, f"no sample value for {route.path}"
        for method in sorted(route.methods or {"GET"}):
            if method == "HEAD":
                continue
            needed = endpoint.write_permission if method in UNSAFE else endpoint.permission
            found.append((method, path, needed))
    assert len(found) > 30
    return found


def session_for(shield: Shield, username: str) -> tuple[str, str]:
    sessions = Sessions(shield.db.engine)
    token = sessions.create(username, shield.clock.now())
    loaded = sessions.load(token, shield.clock.now())
    assert loaded is not None
    return token, loaded.csrf


def test_every_route_refuses_anonymous_and_wrong_roles(shield: Shield) -> None:
    routes = guarded_routes(shield)
    with client(shield) as c:
        for method, path, _ in routes:
            response = c.request(method, path, follow_redirects=False)
            if method == "GET" and path.startswith("/console/") and "/api/" not in path:
                assert response.status_code == 303, (method, path)
                assert response.headers["location"].startswith("/console/login?next=")
            else:
                assert response.status_code == 401, (method, path, response.status_code)
            wrong = c.request(method, path, headers={"authorization": "Bearer wrong"},
                              follow_redirects=False)
            assert wrong.status_code in (401, 303), (method, path)
        for role in ROLES:
            for method, path, needed in routes:
                token, csrf = session_for(shield, f"{role}1")  # fresh: sign-out ends one
                c.cookies.clear()
                c.cookies.set("ss_console", token)
                response = c.request(method, path, headers={"x-csrf-token": csrf, "accept": "text/html"},
                                     follow_redirects=False)
                if allowed(role, needed):
                    assert response.status_code not in (401, 403) and response.status_code < 500, (
                        role, method, path, response.status_code, response.text[:200])
                else:
                    assert response.status_code == 403, (role, method, path, response.status_code)


def test_the_bearer_token_acts_as_admin(shield: Shield) -> None:
    with client(shield) as c:
        auth = {"authorization": f"Bearer {TOKEN}"}
        assert c.get("/console/audit", headers=auth).status_code == 200
        assert c.get("/console/api/overview", headers=auth).json()["top_clients"] == []
        # Scripts need no CSRF token: a bearer token is not sent by browsers on their own.
        added = c.post("/api/lists", headers=auth, json={"kind": "ip", "value": "192.0.2.9",
                                                         "action": "block", "reason": "test"})
        assert added.status_code == 201 and added.json()["created_by"] == "admin-token"


def test_state_changes_need_the_sessions_csrf_token_and_same_origin(shield: Shield) -> None:
    with client(shield) as c:
        assert sign_in(c, "analyst1").status_code == 303
        form = {"title": "probe"}
        assert c.post("/console/cases/open", data=form, follow_redirects=False).status_code == 403
        assert c.post("/console/cases/open", data={**form, "csrf": "forged"},
                      follow_redirects=False).status_code == 403
        token = csrf_of(c)
        assert c.post("/console/cases/open", data={**form, "csrf": token},
                      headers={"origin": "http://evil.example"}, follow_redirects=False).status_code == 403
        ok = c.post("/console/cases/open", data={**form, "csrf": token}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"].startswith("/console/cases/1")
        # the JSON API takes the token as a header from a signed-in browser
        assert c.post("/api/lists", json={"kind": "ip", "value": "192.0.2.1", "action": "block"}
                      ).status_code == 403
        assert c.post("/api/lists", headers={"x-csrf-token": token},
                      json={"kind": "ip", "value": "192.0.2.1", "action": "block"}).status_code == 201
        # the sign-in form itself refuses a post without its double-submit token
        c.cookies.clear()
        refused = c.post("/console/login", data={"username": "analyst1", "password": PASSWORD},
                         follow_redirects=False)
        assert refused.status_code == 403 and "ss_console" not in refused.headers.get("set-cookie", "")


@pytest.mark.parametrize("base_url, secure", [("http://testserver", False), ("https://testserver", True)])
def test_session_cookie_flags(shield: Shield, base_url: str, secure: bool) -> None:
    with client(shield, base_url) as c:
        response = sign_in(c, "legal1")
        assert response.status_code == 303
        cookie = next(v for k, v in response.headers.multi_items()
                      if k == "set-cookie" and v.startswith("ss_console="))
        flags = {part.strip().split("=")[0].lower() for part in cookie.split(";")}
        assert "httponly" in flags
        assert re.search(r"samesite=strict", cookie, re.I)
        assert ("secure" in flags) is secure
        # the database keeps a hash of the session token, never the token itself
        token = cookie.split(";")[0].split("=", 1)[1]
        with shield.db.engine.connect() as conn:
            from sqlalchemy import text
            ids = [r[0] for r in conn.execute(text("select id from console_sessions"))]
        assert token not in ids and len(ids) == 1


def test_guessing_passwords_is_slowed_then_locked(tmp_path: Path) -> None:
    clock = ManualClock(1_800_000_000.0)
    shield = make_shield(tmp_path, clock)
    try:
        with client(shield) as c:
            statuses = []
            for _ in range(3):
                statuses.append(sign_in(c, "analyst1", "wrong password!").status_code)
            assert statuses == [401, 401, 401]
            # the 4th try right away is refused without being checked: 1 s to wait
            slowed = sign_in(c, "analyst1", PASSWORD)
            assert slowed.status_code == 429 and slowed.headers["retry-after"] == "1"
            waits = []
            for _ in range(6):  # failures 4..9: waits of 2, 4, 8, 16, 32, 60 s
                clock.advance(61)
                response = sign_in(c, "analyst1", "wrong password!")
                assert response.status_code == 401
                waits.append(int(response.headers["retry-after"]))
                assert sign_in(c, "analyst1", PASSWORD).status_code == 429  # too soon, even if right
            assert waits == [2, 4, 8, 16, 32, 60]
            clock.advance(61)
            locked = sign_in(c, "analyst1", "wrong password!")  # the 10th failure locks
            assert locked.status_code == 423
            clock.advance(120)
            assert sign_in(c, "analyst1", PASSWORD).status_code == 423  # the right one too
            clock.advance(900)
            assert sign_in(c, "analyst1", PASSWORD).status_code == 303  # after the lock, it works
            trail = [e["action"] for e in shield.db.audit_trail(100)]
            assert trail.count("signin.failed") >= 16 and trail[0] == "signin"
    finally:
        shield.close()


def test_text_from_traffic_is_shown_escaped(shield: Shield) -> None:
    hostile_ua = '<script>document.title="owned"</script><img src=x onerror=alert(1)>'
    hostile_path = '/u/"><svg onload=alert(2)>'
    client_id = shield.pseudonymise("198.51.100.7")
    shield.db.write_events([{
        "ts": shield.clock.now() - 5, "client": client_id, "network": shield.pseudonymise("198.51.100.0/24"),
        "method": "GET", "path": hostile_path, "route": "profile", "record": "user:<b>1</b>",
        "user_agent": hostile_ua, "account": "<i>acct</i>", "fingerprint": "fp<x>", "action": "block",
        "score": 90.0, "rule": "score", "reasons": '["ua.<u>bad</u>"]', "uid": "x-1",
    }])
    with client(shield) as c:
        assert sign_in(c, "analyst1").status_code == 303
        pages = [c.get(f"/console/clients/{client_id}").text,
                 c.get("/console/search", params={"q": "onerror"}).text, c.get("/console/").text]
        for html in pages:
            assert "<script>document.title" not in html and "<img src=x" not in html
            assert "<svg onload" not in html and "<b>1</b>" not in html and "<u>bad</u>" not in html
        assert "&lt;script&gt;document.title=&#34;owned&#34;&lt;/script&gt;" in pages[0]
        assert "&lt;svg onload=alert(2)&gt;" in pages[0]
        assert client_id in pages[1]  # found by the user-agent fragment
        # and the page forbids inline script anyway
        assert "script-src 'self'" in c.get("/console/").headers["content-security-policy"]


def test_only_the_consoles_own_messages_are_shown_after_a_change(shield: Shield) -> None:
    with client(shield) as c:
        assert sign_in(c, "analyst1").status_code == 303
        forged = c.get("/console/cases", params={"done": "Session expired: call +1 555 0100", "sig": "00"})
        assert "call +1 555 0100" not in forged.text
        opened = c.post("/console/cases/open", data={"csrf": csrf_of(c), "title": "x"})
        assert opened.status_code == 200 and '<div class="flash">case opened</div>' in opened.text
