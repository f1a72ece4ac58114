"""The challenge action: tokens, single use, client-bound passes, no open redirect, a browser."""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from urllib.parse import parse_qsl

import httpx
import pytest
import uvicorn
from hypothesis import given
from hypothesis import strategies as st
from playwright.sync_api import Browser
from servers import free_port
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from scrapeshield.actions.challenge import (
    PASS_COOKIE,
    VERIFY_PATH,
    ChallengeService,
    ChallengeSettings,
    VerifyResult,
    safe_return_to,
)
from scrapeshield.actions.challenge_page import assets
from scrapeshield.clock import ManualClock, SystemClock, monotonic

SECRET = b"k" * 32
UA = "Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0.0.0 Safari/537.36"
IP = "203.0.113.7"
FAST = ChallengeSettings(difficulty_bits=8)
_DATA = re.compile(rb'<script type="application/json" id="ss-challenge">(.*?)</script>', re.S)


def challenge_data(page: bytes) -> dict[str, object]:
    match = _DATA.search(page)
    assert match, "no challenge data in the page"
    data: dict[str, object] = json.loads(match.group(1))
    return data


def solve(challenge: str, bits: int, good: bool = True) -> str:
    """Brute-force a nonce (or, with good=False, one that does not work)."""
    nonce = 0
    while True:
        digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
        if (int.from_bytes(digest, "big") >> (256 - bits) == 0) == good:
            return str(nonce)
        nonce += 1


def solved_form(
    service: ChallengeService, ip: str = IP, ua: str = UA, path: str = "/"
) -> dict[str, str]:
    data = challenge_data(service.page(ip, ua, path))
    solution = solve(str(data["challenge"]), int(str(data["difficulty"])))
    return {"token": str(data["token"]), "solution": solution, "return_to": str(data["return_to"])}


def issue_pass(service: ChallengeService, ip: str = IP, ua: str = UA) -> str:
    result = service.verify(solved_form(service, ip, ua), ip, ua)
    assert result.ok and result.pass_cookie, result
    return result.pass_cookie


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def service(clock: ManualClock) -> ChallengeService:
    return ChallengeService(SECRET, clock, FAST)


def test_solved_challenge_gives_a_valid_pass(service: ChallengeService) -> None:
    form = solved_form(service, path="/u/alice?tab=posts")
    result = service.verify(form, IP, UA)
    assert result == VerifyResult(True, "ok", result.pass_cookie, "/u/alice?tab=posts")
    assert result.pass_cookie is not None and len(result.pass_cookie) < 200
    assert service.check_pass(result.pass_cookie, IP, UA).reason == "ok"
    assert service.check_pass(result.pass_cookie, IP, UA).valid


def test_default_difficulty_is_sixteen_bits_and_is_enforced(clock: ManualClock) -> None:
    service = ChallengeService(SECRET, clock)
    data = challenge_data(service.page(IP, UA, "/"))
    assert data["difficulty"] == 16
    form = {"token": str(data["token"]), "return_to": "/",
            "solution": solve(str(data["challenge"]), 16, good=False)}
    assert service.verify(form, IP, UA).reason == "wrong-solution"
    assert service.verify({**form, "solution": solve(str(data["challenge"]), 16)}, IP, UA).ok


def test_a_solution_is_single_use(service: ChallengeService) -> None:
    form = solved_form(service)
    assert service.verify(form, IP, UA).ok
    again = service.verify(form, IP, UA)
    assert (again.ok, again.reason, again.pass_cookie) == (False, "replayed", None)


def test_expired_challenge_refused(service: ChallengeService, clock: ManualClock) -> None:
    form = solved_form(service)
    clock.advance(FAST.challenge_ttl + 1)
    assert service.verify(form, IP, UA).reason == "expired"


def test_challenge_bound_to_network_and_agent(service: ChallengeService) -> None:
    form = solved_form(service)
    assert service.verify(form, "198.51.100.1", UA).reason == "wrong-network"
    assert service.verify(form, IP, UA + " other").reason == "wrong-agent"
    assert service.verify(form, "not-an-ip", UA).reason == "bad-client"
    assert service.verify(form, "203.0.200.200", UA).ok  # same /16


def test_pass_expires(service: ChallengeService, clock: ManualClock) -> None:
    cookie = issue_pass(service)
    clock.advance(FAST.pass_ttl - 1)
    assert service.check_pass(cookie, IP, UA).valid
    clock.advance(2)
    assert service.check_pass(cookie, IP, UA).reason == "expired"


def test_pass_bound_to_network_prefix_and_agent(service: ChallengeService) -> None:
    cookie = issue_pass(service)
    assert service.check_pass(cookie, "203.0.99.1", UA).valid  # carrier NAT moved us in the /16
    assert service.check_pass(cookie, "::ffff:203.0.1.1", UA).valid  # v4-mapped is the same
    assert service.check_pass(cookie, "203.1.0.1", UA).reason == "wrong-network"
    assert service.check_pass(cookie, IP, "curl/8.5").reason == "wrong-agent"
    assert service.check_pass(cookie, "999.1.1.1", UA).reason == "bad-client"


def test_ipv6_pass_bound_to_slash_48(service: ChallengeService) -> None:
    cookie = issue_pass(service, ip="2001:db8:1:2::5")
    assert service.check_pass(cookie, "2001:db8:1:ffff::9", UA).valid
    assert service.check_pass(cookie, "2001:db8:2::5", UA).reason == "wrong-network"


def test_tampered_or_forged_pass_refused(service: ChallengeService, clock: ManualClock) -> None:
    cookie = issue_pass(service)
    body, mac = cookie.split(".")
    flip = {"A": "B", "B": "A"}
    for i in (0, 5, len(body) // 2):
        tampered = body[:i] + flip.get(body[i], "A") + body[i + 1 :] + "." + mac
        assert service.check_pass(tampered, IP, UA).reason == "bad-signature"
    assert service.check_pass(body + "." + mac[::-1], IP, UA).reason in ("bad-signature", "malformed")
    # The last character of a 43-character signature has two unused bits: any other
    # spelling of the same bytes is refused too, so every one-character change fails.
    for other_last in "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_":
        if other_last != mac[-1]:
            assert not service.check_pass(body + "." + mac[:-1] + other_last, IP, UA).valid
    other = ChallengeService(b"another secret", clock, FAST)
    assert other.check_pass(cookie, IP, UA).reason == "bad-signature"
    for garbage in ("", None, "x", body, cookie + ".x", "é.é", cookie[:-3], "a" * 5000):
        assert not service.check_pass(garbage, IP, UA).valid


def test_a_challenge_token_is_not_a_pass(service: ChallengeService) -> None:
    token = solved_form(service)["token"]
    assert service.check_pass(token, IP, UA).reason == "malformed"
    cookie = issue_pass(service)
    form = {"token": cookie, "solution": "1", "return_to": "/"}
    assert service.verify(form, IP, UA).reason == "malformed"


def test_pass_revoked_when_seen_from_too_many_networks(service: ChallengeService) -> None:
    cookie = issue_pass(service)  # bound to 203.0/16; max_networks_per_pass = 3
    for ip in ("198.51.100.1", "198.51.100.2", "192.0.2.1"):  # the first two share a /16
        assert service.check_pass(cookie, ip, UA).reason == "wrong-network"
    assert service.check_pass(cookie, IP, UA).valid  # 3 networks: still the owner's
    assert service.check_pass(cookie, "100.64.0.1", UA).reason == "revoked"
    assert service.check_pass(cookie, IP, UA).reason == "revoked"
    assert service.check_pass(issue_pass(service), IP, UA).valid  # other passes unaffected


def test_memory_bounded_under_a_flood(clock: ManualClock) -> None:
    service = ChallengeService(SECRET, clock, FAST, max_entries=5)
    forms = []
    for _ in range(12):  # issued one second apart: the oldest expires first
        forms.append(solved_form(service))
        clock.advance(1)
    for form in forms:
        assert service.verify(form, IP, UA).ok
    assert len(service._used.items) == 5
    assert service.verify(forms[-1], IP, UA).reason == "replayed"  # newest still remembered
    clock.advance(FAST.challenge_ttl + 61)
    service.verify(solved_form(service), IP, UA)
    assert len(service._used.items) == 1  # expired ids forgotten
    cookies = [issue_pass(service) for _ in range(12)]
    for cookie in cookies:
        service.check_pass(cookie, "198.51.100.1", UA)
    assert len(service._foreign.items) <= 5


def test_reconfigured_keeps_memory_and_refuses_weaker_work(service: ChallengeService) -> None:
    form = solved_form(service)
    assert service.verify(form, IP, UA).ok
    assert service.reconfigured(ChallengeSettings(difficulty_bits=4)).verify(
        form, IP, UA).reason == "replayed"
    harder = service.reconfigured(ChallengeSettings(difficulty_bits=12))
    assert harder.verify(solved_form(service), IP, UA).reason == "weak"


@pytest.mark.parametrize(
    "target",
    ["//evil.example/x", "https://evil.example/", "/\\evil.example", "\\\\evil.example",
     "javascript:alert(1)", "/\t/evil.example", "/\r\nSet-Cookie: a=b", "", "relative/path",
     "/" + "a" * 2000, "/\x85x", "\ud800", "/\ud800"],
)
def test_open_redirects_become_root(service: ChallengeService, target: str) -> None:
    assert safe_return_to(target) == "/"
    data = challenge_data(service.page(IP, UA, target))
    assert data["return_to"] == "/"
    form = {"token": "garbage", "solution": "1", "return_to": target}
    assert service.verify(form, IP, UA).return_to == "/"


def test_local_paths_are_kept_and_percent_encoded(service: ChallengeService) -> None:
    assert safe_return_to("/u/alice?tab=posts&x=1") == "/u/alice?tab=posts&x=1"
    assert safe_return_to("/u/josé") == "/u/jos%C3%A9"
    form = {**solved_form(service, path="/feed"), "return_to": "//evil.example"}
    assert service.verify(form, IP, UA).return_to == "/feed"  # the signed target wins


def test_page_escapes_what_it_embeds(service: ChallengeService) -> None:
    page = service.page(IP, "</script><script>alert(1)</script>", "/x</script><img src=x>&")
    text = page.decode()
    assert "<img" not in text and "alert(1)" not in text
    assert text.count("</script>") == 2  # the JSON block and the solver, nothing injected
    assert "http://" not in text and "https://" not in text  # no external resource
    assert f'action="{VERIFY_PATH}"' in text
    assert challenge_data(page)["return_to"] == "/x%3C/script%3E%3Cimg%20src=x%3E&"


def test_cookie_header(service: ChallengeService) -> None:
    cookie = issue_pass(service)
    header = service.cookie_header(cookie, secure=False)
    assert header.startswith(f"{PASS_COOKIE}={cookie}; ")
    assert {"Path=/", "Max-Age=3600", "HttpOnly", "SameSite=Lax"} <= set(header.split("; "))
    assert "Secure" not in header
    assert service.cookie_header(cookie, secure=True).endswith("; Secure")
    with pytest.raises(ValueError):
        service.cookie_header("a; Domain=evil.example", secure=True)


_ANY = st.one_of(st.text(max_size=300), st.binary(max_size=100).map(lambda b: b.decode("latin-1")))


@given(cookie=_ANY, ip=st.one_of(_ANY, st.ip_addresses().map(str)), ua=_ANY)
def test_any_cookie_never_raises(cookie: str, ip: str, ua: str) -> None:
    check = ChallengeService(SECRET, ManualClock()).check_pass(cookie, ip, ua)
    assert not check.valid and check.reason != "error"


@given(form=st.dictionaries(st.sampled_from(["token", "solution", "return_to", "x"]), _ANY),
       ip=st.one_of(_ANY, st.ip_addresses().map(str)), ua=_ANY)
def test_any_form_never_raises(form: dict[str, str], ip: str, ua: str) -> None:
    result = ChallengeService(SECRET, ManualClock()).verify(form, ip, ua)
    assert not result.ok and result.reason != "error" and result.pass_cookie is None
    assert result.return_to == safe_return_to(result.return_to)


@given(ip=st.one_of(_ANY, st.ip_addresses().map(str)), ua=_ANY, target=_ANY)
def test_any_page_input_never_raises(ip: str, ua: str, target: str) -> None:
    page = ChallengeService(SECRET, ManualClock()).page(ip, ua, target)
    assert challenge_data(page)["return_to"] == safe_return_to(target)


@given(target=_ANY)
def test_return_to_is_always_a_safe_local_path(target: str) -> None:
    out = safe_return_to(target)
    assert out.startswith("/") and not out.startswith("//") and "\\" not in out
    assert out.isascii() and out.isprintable() and " " not in out and len(out) <= 1024
    assert safe_return_to(out) == out


# -- a real browser solves the page by itself -------------------------------------------------


def challenge_app(service: ChallengeService) -> Starlette:
    async def anything(request: Request) -> Response:
        ip = request.client.host if request.client else ""
        ua = request.headers.get("user-agent", "")
        if service.check_pass(request.cookies.get(PASS_COOKIE), ip, ua).valid:
            return PlainTextResponse("welcome")
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return HTMLResponse(service.page(ip, ua, target), status_code=403)

    async def verify(request: Request) -> Response:
        form = dict(parse_qsl((await request.body()).decode("latin-1")))
        result = service.verify(form, request.client.host if request.client else "",
                                request.headers.get("user-agent", ""))
        if not result.ok or result.pass_cookie is None:
            return PlainTextResponse(f"refused: {result.reason}", status_code=403)
        response = RedirectResponse(result.return_to, status_code=303)
        response.headers["set-cookie"] = service.cookie_header(result.pass_cookie, secure=False)
        return response

    return Starlette(routes=[Route(VERIFY_PATH, verify, methods=["POST"]),
                             Route("/{path:path}", anything)])


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    port = free_port()
    config = uvicorn.Config(challenge_app(ChallengeService(SECRET, SystemClock())),
                            host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = monotonic() + 20
    while not server.started and monotonic() < deadline:
        threading.Event().wait(0.05)
    assert server.started, "test server did not start"
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


@pytest.mark.parametrize("worker", [True, False], ids=["web-worker", "page-slices"])
def test_real_browser_solves_the_challenge_by_itself(site: str, browser: Browser,
                                                     worker: bool) -> None:
    context = browser.new_context()
    if not worker:
        context.add_init_script("delete window.Worker;")
    page = context.new_page()
    started = monotonic()
    page.goto(f"{site}/u/alice?tab=posts")
    page.wait_for_function("document.body && document.body.innerText.includes('welcome')",
                           timeout=20_000)
    elapsed = monotonic() - started
    assert page.url == f"{site}/u/alice?tab=posts"
    assert any(c["name"] == PASS_COOKIE and c["httpOnly"] for c in context.cookies())
    page.goto(f"{site}/u/bob")  # the pass now lets the browser straight through
    assert page.inner_text("body") == "welcome"
    context.close()
    assert elapsed < 10, f"solving 16 bits took {elapsed:.1f}s"


def test_site_without_pass_gets_the_challenge(site: str) -> None:
    response = httpx.get(f"{site}/u/alice", headers={"user-agent": UA})
    assert response.status_code == 403 and "Checking your browser…" in response.text


def test_browser_sha256_matches_hashlib(browser: Browser) -> None:
    page = browser.new_page()
    page.set_content("<!doctype html><title>kat</title>")
    page.add_script_tag(content=assets()[1])
    for text in ["", "abc", "a" * 55, "a" * 56, "a" * 64, "b" * 119, "x" * 1000, "jösé ☃"]:
        got = page.evaluate("t => window.scrapeshieldSha256Hex(t)", text)
        assert got == hashlib.sha256(text.encode()).hexdigest(), text
    page.close()
