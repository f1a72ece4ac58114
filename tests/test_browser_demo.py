"""Real headless Chromium against `scrapeshield demo`: a person browsing is never touched, an
unmodified headless browser is challenged and solves the challenge by itself, and the pass it
earns is bound to that browser.

Chromium always connects from 127.0.0.1, so every browser in this file is one client to the
shield's per-IP limits and per-IP memory. The file stays far below the default policy's limits
(ip-burst 60 requests per 10 s, 80 distinct profiles per 10 min): about a dozen profiles and a
few dozen page requests in all, with the person's think times spreading them out.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import httpx
import pytest
from playwright.sync_api import (
    Browser,
    BrowserContext,
    Page,
    Response,
    Route,
    ViewportSize,
)
from servers import CHROME_UA, Server

PASS_COOKIE = "__scrapeshield_pass"
VERIFY_PATH = "/.scrapeshield/verify"
HONEYPOT_PATH = "/u/mira.okafor.archive"
ACTION = "x-scrapeshield-action"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
# Request headers a replay must not copy: the transport's own, and the cookie we set ourselves.
_TRANSPORT = {"host", "connection", "cookie", "content-length"}


@dataclass
class Seen:
    """One response the browser received."""

    method: str
    path: str
    status: int
    action: str | None


def record(context: BrowserContext) -> list[Seen]:
    """Every response any page of ``context`` receives from now on (redirects included)."""
    seen: list[Seen] = []

    def on_response(response: Response) -> None:
        path = urlsplit(response.url).path
        seen.append(Seen(response.request.method, path, response.status,
                         response.headers.get(ACTION)))

    context.on("response", on_response)
    return seen


def decision_counts(demo: Server) -> dict[str, float]:
    """``scrapeshield_decisions_total`` per action, from the admin /metrics."""
    with demo.admin() as admin:
        text = admin.get("/metrics").text
    found = re.findall(r'^scrapeshield_decisions_total\{action="(\w+)"\} (\S+)$', text, re.M)
    assert found, "no decision counters in /metrics"
    return {action: float(value) for action, value in found}


def chrome_ua_for(browser: Browser) -> str:
    """A person's desktop Chrome user-agent naming the major version of the Chromium running,
    so the user-agent and the client hints Chromium sends agree (as in a real Chrome)."""
    major = browser.version.split(".")[0]
    assert major.isdigit(), browser.version
    ua = re.sub(r"Chrome/\d+\.", f"Chrome/{major}.", CHROME_UA)
    assert "Headless" not in ua and f"Chrome/{major}." in ua
    return ua


def profile_name(page: Page) -> str:
    return page.locator("section.profile h1").inner_text(timeout=10_000).strip()


def shot(page: Page, name: str, tmp_dir: Path) -> Path:
    """Save a screenshot into docs/screenshots/ when SCRAPESHIELD_SCREENSHOTS=1, else a temp
    directory (so a normal test run never dirties the working tree)."""
    folder = SCREENSHOTS if os.environ.get("SCRAPESHIELD_SCREENSHOTS") == "1" else tmp_dir
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    page.screenshot(path=str(path))
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5_000, (path, len(data))
    return path


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def users(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    """The demo's ground truth (same --users/--seed as the `demo` fixture), by username."""
    folder = tmp_path_factory.mktemp("dataset")
    out = folder / "users.jsonl"
    subprocess.run(
        [sys.executable, "-m", "scrapeshield", "demo", "--users", "2000", "--seed", "7",
         "--export-dataset", str(out)],
        check=True, cwd=folder, capture_output=True, timeout=120,
    )
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    assert len(rows) == 2000
    return {row["username"]: row for row in rows}


@dataclass
class Challenged:
    """An unmodified headless Chromium that met the challenge on its first request."""

    context: BrowserContext
    page: Page
    target: dict[str, Any]
    seen: list[Seen]
    first: Seen
    user_agent: str
    headers: list[tuple[str, str]]  # what it sent for the profile once it held the pass
    seconds: float
    others: list[dict[str, Any]] = field(default_factory=list)

    def pass_cookie(self) -> dict[str, Any]:
        cookies = [c for c in self.context.cookies() if c["name"] == PASS_COOKIE]
        assert len(cookies) == 1, self.context.cookies()
        return dict(cookies[0])


@pytest.fixture(scope="module")
def challenged(browser: Browser, demo: Server,
               users: dict[str, dict[str, Any]]) -> Iterator[Challenged]:
    """Headless Chromium with its default (HeadlessChrome) user-agent opens a profile."""
    context = browser.new_context()
    seen = record(context)
    page = context.new_page()
    rows = sorted(users.values(), key=lambda u: u["id"])
    target, *others = (rows[i] for i in (1234, 321, 1777))
    path = f"/u/{target['username']}"
    started = time.monotonic()

    def profile_ok(response: Response) -> bool:
        return (urlsplit(response.url).path == path and response.request.method == "GET"
                and response.status == 200)

    with page.expect_response(profile_ok, timeout=20_000) as allowed:
        # "commit": the page starts solving at once; do not wait for a load that it may
        # already be navigating away from.
        page.goto(demo.url + path, wait_until="commit")
    page.locator("section.profile h1").wait_for(timeout=20_000)  # retried across navigations
    page.wait_for_load_state("load")
    seconds = time.monotonic() - started
    user_agent = page.evaluate("navigator.userAgent")
    headers = [(h["name"].lower(), h["value"]) for h in allowed.value.request.headers_array()]
    first = next(s for s in seen if s.path == path)
    yield Challenged(context, page, target, seen, first, user_agent,
                     [(n, v) for n, v in headers if n not in _TRANSPORT], seconds, others)
    context.close()


# -- 1. a person -------------------------------------------------------------------------------


def test_person_browsing_is_never_challenged_or_blocked(
    browser: Browser, demo: Server, users: dict[str, dict[str, Any]]
) -> None:
    before = decision_counts(demo)
    rng = random.Random(7)
    context = browser.new_context(user_agent=chrome_ua_for(browser),
                                  viewport={"width": 1280, "height": 800})
    seen = record(context)
    page = context.new_page()

    def think() -> None:
        page.wait_for_timeout(rng.uniform(500, 1000))

    def open_profile(href: str) -> dict[str, Any]:
        user = users[unquote(href.removeprefix("/u/"))]
        page.locator(f'a[href="{href}"]').first.click()
        page.wait_for_url(demo.url + href)
        page.wait_for_load_state("load")
        assert profile_name(page) == user["name"]
        assert page.locator("dd.phone").inner_text() == user["phone"]  # the full profile
        return user

    page.goto(demo.url + "/")
    page.wait_for_load_state("load")
    assert page.locator("h1").first.inner_text() == "Latest"
    authors = page.locator("section.feed a.author")
    hrefs = list(dict.fromkeys(authors.evaluate_all("els => els.map(e => e.getAttribute('href'))")))
    assert len(hrefs) >= 8, hrefs
    trap = page.locator(f'a[href="{HONEYPOT_PATH}"]')
    assert trap.count() == 1 and not trap.is_visible()  # in the markup, not on the screen
    assert all(authors.nth(i).is_visible() for i in range(authors.count()))

    # Read four profiles from the feed, coming back to it each time.
    picks = rng.sample(hrefs, 5)
    for href in picks[:4]:
        think()
        open_profile(href)
        think()
        page.go_back(wait_until="load")
        assert page.url == demo.url + "/"

    # Search for someone by name, with the search form.
    wanted = users[unquote(picks[0].removeprefix("/u/"))]
    term = wanted["name"]  # what a person types; a name is shared by a handful of users at most
    think()
    page.locator("form.search input[name=q]").fill(term)
    page.locator("form.search button[type=submit]").click()
    page.wait_for_url(re.compile(r"/search\?q="))
    results = page.locator("ul.people li.card a")
    assert results.count() >= 1
    assert wanted["name"] in results.all_inner_texts()

    # Sign in as a demo account, then read one more profile from the feed.
    account = next(u for u in users.values() if u["id"] == 42)
    think()
    page.locator("a.signin").click()
    page.wait_for_url(demo.url + "/login")
    page.locator("form.login input[name=username]").fill(account["username"])
    think()
    page.locator("form.login input[name=password]").fill(account["password"])
    page.locator("form.login button[type=submit]").click()
    page.wait_for_url(demo.url + "/")
    assert page.locator(".whoami").inner_text() == f"Signed in as @{account['username']}"
    think()
    open_profile(picks[4])
    assert page.locator(".whoami").is_visible()
    page.wait_for_load_state("networkidle")
    context.close()

    touched = [s for s in seen if s.action is not None or s.status in (403, 429)]
    assert not touched, touched
    paths = [s.path for s in seen]
    assert {"/static/app.css", "/static/app.js"} <= set(paths), paths
    assert any(p.startswith("/static/avatars/") for p in paths), paths
    profiles = [s for s in seen if s.path in picks and s.method == "GET"]
    assert {s.path for s in profiles} == set(picks) and all(s.status == 200 for s in profiles)
    assert any(s.path == "/search" and s.status == 200 for s in seen)
    assert any(s.path == "/login" and s.method == "POST" and s.status == 303 for s in seen)
    assert HONEYPOT_PATH not in paths and VERIFY_PATH not in paths
    # The shield's own counters agree: nothing but allows while the person browsed.
    after = decision_counts(demo)
    for action in ("challenge", "block", "throttle", "tarpit"):
        assert after.get(action, 0) == before.get(action, 0), (action, before, after)
    assert after["allow"] >= before["allow"] + 10


# -- 2. unmodified headless Chromium -----------------------------------------------------------


def test_headless_chromium_is_challenged_and_solves_it_by_itself(
    challenged: Challenged, demo: Server
) -> None:
    c = challenged
    assert "HeadlessChrome/" in c.user_agent  # nothing disguised: scored as browser automation
    path = f"/u/{c.target['username']}"
    assert (c.first.method, c.first.status, c.first.action) == ("GET", 403, "challenge")
    assert c.seen[0] == c.first  # the very first thing the browser got was the challenge
    # It then posted its proof of work, was sent back, and got the profile, with no one's help.
    verify = [s for s in c.seen if s.path == VERIFY_PATH]
    assert [(s.method, s.status) for s in verify] == [("POST", 303)], c.seen
    landed = c.seen[c.seen.index(verify[0]) + 1]
    assert (landed.path, landed.status, landed.action) == (path, 200, None), c.seen
    assert c.page.url == demo.url + path
    assert profile_name(c.page) == c.target["name"]
    assert c.page.locator("dd.email").inner_text() == c.target["email"]
    assert c.seconds < 15, f"solving the challenge took {c.seconds:.1f}s"

    cookie = c.pass_cookie()
    assert cookie["httpOnly"] and cookie["path"] == "/" and cookie["sameSite"] == "Lax"
    assert cookie["expires"] > time.time() + 600  # hours, not a session cookie
    assert PASS_COOKIE not in c.page.evaluate("document.cookie")  # page scripts cannot read it

    # Further navigation is let straight through: no second challenge.
    mark = len(c.seen)
    for other in c.others:
        response = c.page.goto(f"{demo.url}/u/{other['username']}")
        assert response is not None and response.status == 200
        assert response.headers.get(ACTION) is None
        assert profile_name(c.page) == other["name"]
    c.page.wait_for_load_state("networkidle")
    later = c.seen[mark:]
    assert later and not [s for s in later if s.action is not None or s.status >= 400], later
    assert VERIFY_PATH not in [s.path for s in later]


# -- 3. the pass is bound to the browser -------------------------------------------------------


def test_pass_is_bound_to_the_browser_that_earned_it(challenged: Challenged, demo: Server) -> None:
    """Only what decide.py guarantees: a valid pass answers the automation user-agent (a score
    challenge becomes allow); it never lifts a block that the request's own headers earn, and
    it is worthless with another user-agent, network or a changed byte."""
    value = challenged.pass_cookie()["value"]
    as_browser = [(n, v) for n, v in challenged.headers if n != "user-agent"]
    assert dict(challenged.headers)["user-agent"] == challenged.user_agent
    assert {"sec-ch-ua", "accept-language", "sec-fetch-mode"} <= dict(as_browser).keys()
    path = f"/u/{challenged.others[0]['username']}"

    def get(cookie: str | None, headers: list[tuple[str, str]], source: str = "127.0.0.1",
            ) -> httpx.Response:
        extra = [("cookie", f"{PASS_COOKIE}={cookie}")] if cookie is not None else []
        transport = httpx.HTTPTransport(local_address=source)
        with httpx.Client(base_url=demo.url, transport=transport, timeout=15) as client:
            return client.get(path, headers=[*headers, *extra])

    def challenged_(response: httpx.Response) -> bool:
        return (response.status_code == 403 and response.headers.get(ACTION) == "challenge"
                and "Checking your browser" in response.text)

    def allowed(response: httpx.Response) -> bool:
        return (response.status_code == 200 and ACTION not in response.headers
                and challenged.others[0]["name"] in response.text)

    same_browser = [*as_browser, ("user-agent", challenged.user_agent)]
    # The browser's own request headers (names and values), replayed: challenged without the
    # pass (HeadlessChrome scores as automation), allowed with it.
    assert challenged_(get(None, same_browser))
    assert allowed(get(value, same_browser))

    # Another user-agent from the same address: the pass does not count.
    assert challenged_(get(value, []))  # httpx as it comes: python-httpx/…
    other_agent = [*as_browser, ("user-agent", f"python-httpx/{httpx.__version__}")]
    assert challenged_(get(value, other_agent))

    # One changed character, in the signed payload or in the signature: challenged again.
    body, mac = value.split(".")
    for i in (len(body) // 2, 3):
        swapped = body[:i] + ("B" if body[i] != "B" else "C") + body[i + 1 :]
        assert challenged_(get(f"{swapped}.{mac}", same_browser)), i
    wrong_mac = ("B" if mac[0] != "B" else "C") + mac[1:]
    assert challenged_(get(f"{body}.{wrong_mac}", same_browser))
    assert challenged_(get("", same_browser))

    # Another network (127.1/16 is not the browser's 127.0/16): the pass does not count.
    assert challenged_(get(value, same_browser, source="127.1.0.1"))
    assert allowed(get(value, same_browser))  # one foreign sighting does not revoke it

    # The same user-agent without the headers a Chromium sends scores higher; the pass sets
    # aside the automation user-agent, and the header findings unless they reach the block
    # threshold on their own, so the answer is allow or block, never a challenge (the pass is
    # valid), and a block means the score reached the block threshold.
    bare = get(value, [("user-agent", challenged.user_agent)])
    assert not challenged_(bare)
    if not allowed(bare):
        assert (bare.status_code, bare.headers.get(ACTION)) == (403, "block")
        with demo.admin() as admin:
            block_at = float(admin.get("/api/policy").json()["thresholds"]["block"])
            recorded = admin.get("/api/decisions", params={"action": "block", "limit": 50})
        mine = [d for d in recorded.json()["decisions"]
                if d["user_agent"] == challenged.user_agent and d["path"] == path]
        assert mine and mine[0]["score"] >= block_at, mine


# -- 4. screenshots ----------------------------------------------------------------------------


def test_screenshots_of_home_and_challenge(browser: Browser, demo: Server,
                                           tmp_path: Path) -> None:
    """The demo home page as a person sees it, and the challenge page caught mid-solve.

    With SCRAPESHIELD_SCREENSHOTS=1 they are saved as docs/screenshots/demo-home.png and
    docs/screenshots/challenge.png."""
    viewport: ViewportSize = {"width": 1280, "height": 800}
    person = browser.new_context(user_agent=chrome_ua_for(browser), viewport=viewport)
    page = person.new_page()
    response = page.goto(demo.url + "/", wait_until="networkidle")
    assert response is not None and response.status == 200 and ACTION not in response.headers
    assert page.locator("section.feed article.post").count() >= 10
    shot(page, "demo-home.png", tmp_path)
    person.close()

    robot = browser.new_context(viewport=viewport)  # HeadlessChrome: challenged
    posted: list[dict[str, str]] = []

    def hold(route: Route) -> None:
        posted.append(dict(parse_qsl(route.request.post_data or "")))
        route.abort("aborted")  # keep the page on the challenge: no error page, no redirect

    robot.route(f"**{VERIFY_PATH}", hold)
    page = robot.new_page()
    response = page.goto(demo.url + "/", wait_until="commit")  # it may post before "load"
    assert response is not None and response.status == 403
    assert response.headers.get(ACTION) == "challenge"
    deadline = time.monotonic() + 20
    while not posted and time.monotonic() < deadline:
        page.wait_for_timeout(100)
    assert posted, "the challenge page never posted a solution"
    page.wait_for_timeout(300)  # let the held-back submission settle
    # Read from the document: page.title() reports a navigation in flight as "Loading …".
    assert page.url == demo.url + "/"  # still showing the challenge
    assert page.evaluate("document.title") == "Checking your browser…"
    assert page.locator("#ss-title").inner_text() == "Checking your browser…"
    assert page.locator("#ss-status").is_visible()
    # What the page worked out really is a proof of work for the challenge it was given.
    data = json.loads(page.locator("#ss-challenge").text_content() or "{}")
    form = posted[0]
    assert form["token"] == data["token"] and form["return_to"] == "/"
    digest = hashlib.sha256(f"{data['challenge']}:{form['solution']}".encode()).digest()
    assert int.from_bytes(digest, "big") >> (256 - int(data["difficulty"])) == 0
    shot(page, "challenge.png", tmp_path)
    robot.close()
