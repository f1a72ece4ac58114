"""Helpers for console tests: an in-process shield with its admin app, and signing in through
the real sign-in form (the double-submit token read from the page, as a browser does)."""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import httpx

from scrapeshield.admin.api import create_admin_app
from scrapeshield.clock import ManualClock
from scrapeshield.console.users import Users
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

with warnings.catch_warnings():  # starlette prefers httpx2; plain httpx works the same here
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TOKEN = "console-test-token-0123456789"
PASSWORD = "a long test password"
ROLES = ("analyst", "admin", "legal")


def make_shield(tmp: Path, clock: ManualClock | None = None) -> Shield:
    shield = Shield(Settings.resolve(str(tmp)), clock=clock or ManualClock(1_800_000_000.0))
    users = Users(shield.db.engine)
    for role in ROLES:
        users.add(f"{role}1", role, PASSWORD, shield.clock.now())
    return shield


def client(shield: Shield, base_url: str = "http://testserver") -> TestClient:
    return TestClient(create_admin_app(shield, TOKEN), base_url=base_url)


def login_form(c: TestClient | httpx.Client) -> str:
    page = c.get("/console/login")
    assert page.status_code == 200
    found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
    assert found, page.text[:500]
    return found.group(1)


def sign_in(c: TestClient, username: str, password: str = PASSWORD) -> httpx.Response:
    token = login_form(c)
    return c.post("/console/login", data={"username": username, "password": password,
                                          "login_csrf": token, "next": "/console/"},
                  follow_redirects=False)


def csrf_of(c: TestClient) -> str:
    page = c.get("/console/")
    found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page.text)
    assert found, page.text[:300]
    return found.group(1)
