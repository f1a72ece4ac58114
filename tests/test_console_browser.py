"""The console in real headless Chromium against `scrapeshield demo`: sign in with the first
admin password the demo printed once, watch the live overview move while a distributed scraper
runs against the public port, open the scraper's campaign (formed by the grouping job) and one
of its clients, block them, and see the blocks answered on the public port.

Each scraper host gets its own loopback source address (127.0.0.x); they all send the same
Chrome-like headers, so they share one fingerprint, which is what makes them one campaign.
Screenshots go to docs/screenshots/ with SCRAPESHIELD_SCREENSHOTS=1, else to a temp folder.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page
from servers import Server, chrome_headers, start_cli

SCREENSHOTS = Path(__file__).resolve().parent.parent / "docs" / "screenshots"
SCRAPERS = [f"127.0.0.{n}" for n in range(51, 55)]
HOSTILE_UA = "<img src=x onerror=\"document.title='pwned'\">Mozilla/5.0 evil"


def shot(page: Page, name: str, tmp_dir: Path) -> None:
    folder = SCREENSHOTS if os.environ.get("SCRAPESHIELD_SCREENSHOTS") == "1" else tmp_dir
    folder.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(folder / name), full_page=False)
    assert (folder / name).stat().st_size > 10_000


def public(server: Server, source: str, extra: dict[str, str] | None = None,
           **kwargs: object) -> httpx.Client:
    host = server.url.split("//")[1]
    headers = {**chrome_headers(host), **(extra or {})}  # another header set: another fingerprint
    return httpx.Client(base_url=server.url, transport=httpx.HTTPTransport(local_address=source),
                        headers=headers, timeout=10, **kwargs)  # type: ignore[arg-type]


class Scraper:
    """Several hosts walking profile ids in turn at a steady pace, until stopped (bounded)."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.stop = threading.Event()
        self.statuses: list[int] = []
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        clients = [public(self.server, ip) for ip in SCRAPERS]
        try:
            for n in range(1, 1200):  # at most ~2 minutes
                if self.stop.is_set():
                    return
                response = clients[n % len(clients)].get(f"/api/v1/users/{n}")
                self.statuses.append(response.status_code)
                self.stop.wait(0.1)
        finally:
            for c in clients:
                c.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    s = start_cli(["demo", "--users", "2000", "--seed", "7"], tmp_path_factory.mktemp("console-demo"))
    yield s
    s.stop()


def admin_password(server: Server) -> str:
    found = re.search(r"first sign-in: user admin, password (\S+) \(shown once", server.log())
    assert found, server.log()
    return found.group(1)


def sign_in(page: Page, server: Server, password: str) -> None:
    page.goto(server.admin_url + "/console/")
    assert "/console/login" in page.url  # anonymous: sent to the sign-in form
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", password)
    page.click("button.primary")
    page.wait_for_url(server.admin_url + "/console/")


def wait_until(page: Page, expression: str, timeout: float = 60.0) -> None:
    """Poll a JS expression through the DevTools protocol (the console's CSP forbids the
    eval that Playwright's wait_for_function uses)."""
    deadline = time.monotonic() + timeout
    while not page.evaluate(f"() => Boolean({expression})"):
        assert time.monotonic() < deadline, f"still false after {timeout:.0f} s: {expression}"
        page.wait_for_timeout(250)


ACTIONS = ("allow", "throttle", "challenge", "block", "tarpit", "degrade", "decoy")
TOTAL_JS = " + ".join(f"Number(document.querySelector('[data-kpi={a}]').textContent)" for a in ACTIONS)


def total(page: Page) -> int:
    """Decisions of every action in the overview's figures (as the page shows them now)."""
    return int(page.evaluate(f"() => {TOTAL_JS}"))


def test_console_is_not_on_the_public_port(server: Server) -> None:
    with public(server, "127.0.0.80") as person:
        assert person.get("/console/login").status_code == 404
        assert person.get("/api/audit").status_code == 404
    assert httpx.get(server.admin_url + "/console/login").status_code == 200


def test_watch_find_and_block_a_distributed_scraper(server: Server, browser: Browser,
                                                     tmp_path: Path) -> None:
    password = admin_password(server)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    context.on("dialog", lambda dialog: dialog.accept())  # the "apply now?" confirmations
    page = context.new_page()
    shot_page = context.new_page()
    shot_page.goto(server.admin_url + "/console/login")
    shot(shot_page, "console-login.png", tmp_path)
    shot_page.close()
    sign_in(page, server, password)
    wait_until(page, "Number(document.body.dataset.updates || 0) >= 1")
    before = total(page)

    # A fresh host with the scraper's fingerprint is served before any block.
    with public(server, "127.0.0.60") as probe:
        assert probe.get("/api/v1/users/1500").status_code == 200
    with public(server, "127.0.0.61", follow_redirects=False) as hostile:
        hostile.get("/u/nobody-here", headers={"user-agent": HOSTILE_UA})

    scraper = Scraper(server)
    scraper.thread.start()
    try:
        # The overview updates by itself (no reload) as the scraper's requests arrive.
        wait_until(page, f"{TOTAL_JS} > {before + 20}")
        updates = int(page.evaluate("document.body.dataset.updates"))
        assert updates >= 2
        page.wait_for_selector("#top-clients tbody tr a", timeout=30_000)
        assert page.locator("#top-routes tbody tr").count() >= 1

        # The grouping job (every 60 s) forms the campaign; the overview lists it.
        page.wait_for_selector("#top-campaigns tbody tr a", timeout=120_000)
        shot(page, "console-overview.png", tmp_path)
    finally:
        scraper.stop.set()
        scraper.thread.join(timeout=30)
    assert len(scraper.statuses) > 20 and scraper.statuses.count(200) >= 1

    page.click("#top-campaigns tbody tr a")
    page.wait_for_selector("h1")
    assert "/console/campaigns/cmp-" in page.url
    assert page.locator("text=Members").count() >= 1
    members = page.locator("table.grid").nth(0)
    assert members.count() == 1
    shot(page, "console-campaign.png", tmp_path)

    # Block the whole campaign for an hour.
    form = page.locator("form.act")
    form.locator("select[name=action]").select_option("block")
    form.locator("select[name=ttl]").select_option("1h")
    form.locator("input[name=reason]").fill("distributed profile enumeration (browser test)")
    form.locator("button[name=go]").click()
    page.wait_for_selector(".flash")
    assert "block:" in page.locator(".flash").inner_text()

    # The scraper's hosts are now refused on the public port by that list entry.
    with public(server, SCRAPERS[0]) as again:
        refused = again.get("/api/v1/users/1501")
    assert refused.status_code == 403 and refused.headers["x-scrapeshield-action"] == "block"
    with server.admin() as admin:
        latest = admin.get("/api/decisions", params={"limit": 100}).json()["decisions"]
    mine = next(d for d in latest if d["path"] == "/api/v1/users/1501")
    assert mine["rule"] == "list" and any("browser test" in r for r in mine["reasons"]), mine
    if "fingerprint" in page.locator("p.muted").first.inner_text():
        # A fingerprint campaign is blocked by its fingerprint: a new host with it is refused too.
        with public(server, "127.0.0.62") as newcomer:
            assert newcomer.get("/api/v1/users/1502").status_code == 403

    # Open a case on the campaign, then look at one of its clients and block it too.
    page.locator("form[action$='/cases/open'] button").click()
    page.wait_for_url(re.compile(r".*/console/cases/\d+.*"))
    page.fill("textarea[name=text]", "Blocked the fingerprint; <b>evidence</b> next.")
    page.locator("form[action$='/note'] button").click()
    page.wait_for_selector(".note .text")
    assert page.locator(".note .text").inner_text() == "Blocked the fingerprint; <b>evidence</b> next."
    shot(page, "console-case.png", tmp_path)

    page.goto(server.admin_url + "/console/campaigns")
    page.locator("table.grid tbody tr a").first.click()
    page.locator("table.grid a[href*='/console/clients/p:']").first.click()
    page.wait_for_selector("form.act")
    shot(page, "console-client.png", tmp_path)

    # Search by a raw IP finds the client through its pseudonym.
    page.fill("header input[name=q]", SCRAPERS[0])
    page.press("header input[name=q]", "Enter")
    page.wait_for_selector("text=Clients (")
    assert page.locator("a[href*='/console/clients/p:']").count() >= 1
    assert "client" in page.locator("text=Matched on").inner_text()

    # A hostile user-agent from the traffic is shown as text, never run.
    page.goto(server.admin_url + "/console/search?q=onerror")
    page.wait_for_selector("text=Clients (")
    assert "pwned" not in page.title()
    assert page.locator("td.wrap", has_text="<img src=x onerror=").count() >= 1
    assert page.locator("img[src=x]").count() == 0

    page.goto(server.admin_url + "/console/audit")
    trail = page.locator("table.grid").inner_text()
    assert "signin" in trail and "campaign.act" in trail and "case.open" in trail, trail
    shot(page, "console-audit.png", tmp_path)
    page.goto(server.admin_url + "/console/alerts")
    shot(page, "console-alerts.png", tmp_path)
    page.goto(server.admin_url + "/console/legal")
    shot(page, "console-legal.png", tmp_path)
    context.close()
    unlist(server, "browser test")


def test_block_one_client_from_its_page(server: Server, browser: Browser) -> None:
    """The client path: its address is known only by pseudonym, blocked through this node's
    memory. Its hosts are in another /24 than the campaign test's (which blocks a subnet)."""
    other_browser = {"dnt": "1"}
    with public(server, "127.0.1.70", other_browser) as person:
        assert person.get("/api/v1/users/7").status_code == 200
    with server.admin() as admin:
        decisions = admin.get("/api/decisions", params={"limit": 1000}).json()["decisions"]
    pseudonym = next(d["client"] for d in decisions if d["path"] == "/api/v1/users/7")
    context = browser.new_context()
    context.on("dialog", lambda dialog: dialog.accept())
    page = context.new_page()
    sign_in(page, server, admin_password(server))
    page.goto(server.admin_url + f"/console/clients/{pseudonym}")
    form = page.locator("form.act")
    form.locator("select[name=target]").select_option(index=0)  # this client's address
    form.locator("select[name=ttl]").select_option("15m")
    form.locator("input[name=reason]").fill("test block of one client")
    form.locator("button[name=go]").click()
    page.wait_for_selector(".flash")
    with public(server, "127.0.1.70", other_browser) as person, \
            public(server, "127.0.1.71", other_browser) as other:
        blocked = person.get("/api/v1/users/8")
        assert blocked.status_code == 403 and blocked.headers["x-scrapeshield-action"] == "block"
        assert other.get("/api/v1/users/8").status_code == 200  # only that address
    context.close()
    unlist(server, "test block of one client")


def unlist(server: Server, reason: str) -> None:
    """Remove this test's list entries, so the other tests' hosts are not refused by them."""
    with server.admin() as admin:
        for entry in admin.get("/api/lists").json()["entries"]:
            if reason in entry["reason"]:
                admin.delete("/api/lists", params={"kind": entry["kind"], "value": entry["value"]})
