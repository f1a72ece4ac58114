"""hold (actions/hold.py): a page read that only its build's campaign doubts is shown at once
with its personal fields held back; the page's own script proves the browser and brings them.

Through the real engine first (what is held and what is still challenged), then end to end:
the demo behind the shield, a rotating referer-less fleet (bare reads from many
X-Forwarded-For addresses through a trusted proxy, one browser build, header for header the
build of the Chromium that follows) heats that build's campaign counters, and a real
Chromium that opens a profile directly is served the full profile without a challenge page,
while the fleet's further hops get the page without its personal fields.
"""

from __future__ import annotations

import http.client
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Response
from servers import CHROME_UA, Server, free_port, start_cli
from test_signals_campaign import CHROME_131, _residential

from scrapeshield.actions.hold import HOLD_RULE, held, with_proof
from scrapeshield.actions.responses import decision_reply
from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import default_policy_text, load_policy, parse_policy
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision

ACTION = "x-scrapeshield-action"
START = 1_767_225_600.0


def _hot_engine(policy_text: str | None = None) -> tuple[Engine, ManualClock]:
    """An engine whose Chrome 131 build has been read bare, asset-less, from 60 addresses."""
    clock = ManualClock(START)
    policy = parse_policy(policy_text) if policy_text else load_policy()
    engine = Engine(policy, MemoryStore(), clock)
    for i, ip in enumerate(_residential(60)):
        clock.advance(1.0)
        engine.decide(engine.contexts.build(clock.now(), ip, "GET", f"/u/user{i * 13 % 997}", CHROME_131))
    return engine, clock


def test_a_direct_arrival_on_a_hot_build_is_held_not_challenged() -> None:
    engine, clock = _hot_engine()
    clock.advance(1.0)
    ctx = engine.contexts.build(clock.now(), "81.2.69.160", "GET", "/u/someone", CHROME_131)
    decision = engine.decide(ctx)
    assert decision.action is Action.DEGRADE and held(decision) and decision.rule == HOLD_RULE
    assert any(r.startswith("campaign.fingerprint") for r in decision.reasons)
    assert any("held for the page's script" in r for r in decision.reasons)


def test_what_is_still_challenged() -> None:
    engine, clock = _hot_engine()
    # The JSON API has no page to carry a script: its bare read is challenged as before.
    clock.advance(1.0)
    api = engine.decide(engine.contexts.build(clock.now(), "81.2.69.161", "GET", "/api/v1/users/77",
                                              CHROME_131))
    assert api.action is Action.CHALLENGE and not held(api)
    # A request that is not a page load (a script's fetch) is not held either.
    fetch = [(n, "cors" if n == "sec-fetch-mode" else v) for n, v in CHROME_131]
    clock.advance(1.0)
    other = engine.decide(engine.contexts.build(clock.now(), "81.2.69.162", "GET", "/u/x1", fetch))
    assert other.action is Action.CHALLENGE and not held(other)
    # A client doubted for itself too (a Chrome page request without Accept-Encoding and
    # Accept-Language) meets the challenge: the hold answers the campaign's doubt alone.
    own = [(n, v) for n, v in CHROME_131 if n not in ("accept-language", "accept-encoding")]
    clock.advance(1.0)
    doubted = engine.decide(engine.contexts.build(clock.now(), "81.2.69.163", "GET", "/u/x2", own))
    assert doubted.action is Action.CHALLENGE and not held(doubted), doubted.reasons


def test_a_forged_pass_cookie_does_not_make_a_fleet_hop_a_person() -> None:
    """A read is bare unless its pass is one the shield issued and honours: a fleet cannot
    put any cookie of that name on its hops to pass for people who solved a challenge."""
    from scrapeshield.actions.challenge import PASS_COOKIE, ChallengeService
    from scrapeshield.simulate.solver import solve

    engine, clock = _hot_engine()
    engine.challenge = ChallengeService(b"k" * 32, clock)
    forged = CHROME_131 + [("cookie", f"{PASS_COOKIE}=eyJ.abc")]
    clock.advance(1.0)
    decision = engine.decide(engine.contexts.build(clock.now(), "81.2.69.170", "GET", "/u/f1", forged))
    assert held(decision) and any(r.startswith("campaign.fingerprint") for r in decision.reasons)
    issued = solve(engine.challenge, "81.2.69.171", dict(CHROME_131)["user-agent"], "/u/f2")
    assert issued is not None
    real = CHROME_131 + [("cookie", f"{PASS_COOKIE}={issued}")]
    clock.advance(1.0)
    decision = engine.decide(engine.contexts.build(clock.now(), "81.2.69.171", "GET", "/u/f2", real))
    assert decision.action is Action.ALLOW, decision.reasons


def test_hold_pages_off_challenges_as_before() -> None:
    text = default_policy_text().replace("breadth_per_client: 15}", "breadth_per_client: 15,\n"
                                         "              hold_pages: false}")
    assert "hold_pages: false" in text
    engine, clock = _hot_engine(text)
    clock.advance(1.0)
    decision = engine.decide(engine.contexts.build(clock.now(), "81.2.69.160", "GET", "/u/someone",
                                                   CHROME_131))
    assert decision.action is Action.CHALLENGE and not held(decision)


def test_the_held_page_carries_the_challenge_and_hosts_that_cannot_rewrite_challenge() -> None:
    engine, clock = _hot_engine()
    from scrapeshield.actions.challenge import ChallengeService

    service = ChallengeService(b"k" * 32, clock)
    ctx = engine.contexts.build(clock.now(), "81.2.69.160", "GET", "/u/someone", CHROME_131,
                                query="tab=posts")
    page = with_proof("<html><body><h1>…</h1></body></html>", service, ctx)
    head, _, tail = page.partition('<script type="application/json" id="ss-challenge">')
    data = json.loads(tail.partition("</script>")[0])
    assert head.startswith("<html><body><h1>…</h1>") and tail.endswith("</body></html>")
    assert data["return_to"] == "/u/someone?tab=posts" and data["difficulty"] == 16
    assert 'id="ss-form"' in head and "/.scrapeshield/verify" in head
    decision = Decision(Action.DEGRADE, 55.0, (), HOLD_RULE)
    reply = decision_reply(service, ctx, decision, "tab=posts")
    assert reply.status == 403 and dict(reply.headers)[ACTION] == "challenge"
    assert b"ss-challenge" in reply.body


# -- end to end: the demo, a fleet, a real browser ----------------------------------------------


class _Capture(BaseHTTPRequestHandler):
    """Answers every request; keeps the headers of the last page one (/u/...), as received."""

    seen: list[tuple[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802 - the http.server spelling
        if self.path.startswith("/u/"):  # not the browser's favicon fetch that follows
            type(self).seen = [(k.lower(), v) for k, v in self.headers.items()]
        body = b"<!doctype html><title>x</title><p>ok</p>"
        self.send_response(200)
        self.send_header("content-type", "text/html")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture(scope="module")
def trusted_demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, dict[str, Any]]]:
    """The demo behind the shield, trusting 127.0.0.1's X-Forwarded-For (a proxy in front)."""
    folder = tmp_path_factory.mktemp("hold")
    text = subprocess.run([sys.executable, "-m", "scrapeshield", "policy", "default"],
                          check=True, capture_output=True, text=True).stdout
    policy = folder / "policy.yaml"
    policy.write_text(text.replace("trusted_proxies: []", "trusted_proxies: [127.0.0.1]"))
    out = folder / "users.jsonl"
    subprocess.run([sys.executable, "-m", "scrapeshield", "demo", "--users", "2000", "--seed", "7",
                    "--export-dataset", str(out)], check=True, capture_output=True, timeout=120)
    users = {row["username"]: row for row in map(json.loads, out.read_text().splitlines())}
    server = start_cli(["demo", "--users", "2000", "--seed", "7", "--policy", str(policy)], folder)
    yield server, users
    server.stop()


def _chrome_headers(browser: Browser, ua: str) -> list[tuple[str, str]]:
    """The headers this Chromium sends to open a page directly, names in their order."""
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), _Capture)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        context = browser.new_context(user_agent=ua)
        context.new_page().goto(f"http://127.0.0.1:{server.server_address[1]}/u/anyone")
        context.close()
    finally:
        server.shutdown()
        server.server_close()
    return list(_Capture.seen)


def _bare_read(url: str, path: str, headers: list[tuple[str, str]], address: str) -> tuple[str, str]:
    """One fleet hop: the page read with exactly ``headers`` (in order), from ``address``
    as the trusted proxy names it. Returns (X-Scrapeshield-Action or "", body)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)
    try:
        conn.putrequest("GET", path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers:
            value = f"{parts.hostname}:{parts.port}" if name == "host" else value
            conn.putheader(name, value)
        conn.putheader("x-forwarded-for", address)
        conn.endheaders()
        response = conn.getresponse()
        assert response.getheader("content-encoding") in (None, "identity")  # the demo sends none
        return response.getheader(ACTION) or "", response.read().decode("utf-8", "replace")
    finally:
        conn.close()


def test_a_real_browser_opening_a_profile_directly_is_served_while_the_fleet_is_held(
    browser: Browser, trusted_demo: tuple[Server, dict[str, Any]]
) -> None:
    demo, users = trusted_demo
    major = browser.version.split(".")[0]
    ua = CHROME_UA.replace(CHROME_UA.split("Chrome/")[1].split(".")[0] + ".", major + ".", 1)
    assert f"Chrome/{major}." in ua and "Headless" not in ua
    build = _chrome_headers(browser, ua)
    names = [n for n, _ in build]
    assert "user-agent" in names and "referer" not in names, names
    names_list = sorted(users)
    fleet = names_list[:400]
    # The fleet: one bare read per address, a fresh public address each time.
    served = held_pages = 0
    for i, username in enumerate(fleet[:60]):
        action, body = _bare_read(demo.url, f"/u/{username}", build, f"{24 + i % 50}.{i + 1}.{i * 7 % 256}.9")
        if users[username]["phone"] in body:
            assert action == ""
            served += 1
        else:
            assert action == "degrade" and 'id="ss-challenge"' in body, (action, body[:300])
            held_pages += 1
    assert served <= 25 and held_pages >= 35, (served, held_pages)

    # A person on the same build opens a profile directly (a link from a messaging app).
    person = users[names_list[-1]]
    context = browser.new_context(user_agent=ua)
    seen: list[tuple[str, str, int, str]] = []

    def on_response(response: Response) -> None:
        seen.append((response.request.method, urlsplit(response.url).path, response.status,
                     response.headers.get(ACTION, "")))

    context.on("response", on_response)
    page = context.new_page()
    page.goto(f"{demo.url}/u/{person['username']}")
    page.locator("dd.phone", has_text=person["phone"]).wait_for(timeout=20_000)
    page.wait_for_load_state("load")
    assert page.locator("section.profile h1").inner_text() == person["name"]
    assert page.locator("dd.email").inner_text() == person["email"]
    documents = [s for s in seen if s[1] in (f"/u/{person['username']}", "/.scrapeshield/verify")]
    assert documents[0] == ("GET", f"/u/{person['username']}", 200, "degrade"), seen  # held first
    assert ("POST", "/.scrapeshield/verify", 303, "") in documents, seen  # its script's proof
    assert documents[-1] == ("GET", f"/u/{person['username']}", 200, ""), seen  # then served whole
    assert not any(s[3] == "challenge" for s in seen), seen  # never the challenge page
    assert any(c["name"] == "__scrapeshield_pass" for c in context.cookies())
    context.close()

    # The fleet is still contained: further hops get the page without its personal fields.
    for i, username in enumerate(fleet[60:100]):
        action, body = _bare_read(demo.url, f"/u/{username}", build, f"{80 + i % 40}.{i + 3}.{i}.77")
        assert action == "degrade" and users[username]["phone"] not in body, (action, i)
        assert users[username]["email"] not in body


def test_the_held_page_is_the_application_page_without_its_personal_fields(
    trusted_demo: tuple[Server, dict[str, Any]]
) -> None:
    """What a fleet hop takes away: the page's layout, handle and posts, no personal field."""
    demo, users = trusted_demo
    headers = CHROME_131
    names = sorted(users)[1000:1060]
    last = ""
    for i, username in enumerate(names):
        action, last = _bare_read(demo.url, f"/u/{username}", headers, f"61.{i + 1}.{i * 3 % 256}.5")
    user = users[names[-1]]
    assert action == "degrade", action
    assert f"@{user['username']}" in last and "Recent posts" in last
    for field in ("name", "phone", "email", "bio", "city"):
        assert str(user[field]) not in last, field
    assert "…" in last and "JavaScript is on" in last

