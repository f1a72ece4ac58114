"""The decision service in-process: what nginx auth_request and forward-auth proxies are told.

The proxy is the ASGI peer (127.0.0.1, trusted by deploy/policy-edge.yaml); the client's
request arrives as its headers plus X-Original-* (nginx) or X-Forwarded-* (Caddy, Traefik).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit

import httpx
import pytest
import yaml
from click.testing import CliRunner
from redis_server import redis_server  # noqa: F401 - the fixture
from servers import start_cli
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wsgi_apps.faults import FailingContexts

from scrapeshield.actions.challenge import MAX_RETURN_TO
from scrapeshield.cli import main
from scrapeshield.clock import ManualClock
from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
from scrapeshield.hosts.auth_request import CHALLENGE_DATA_HEADER, DecisionService, _path, _quoted
from scrapeshield.hosts.edge_page import MARKER, template, write_template
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.types import Decision, RequestContext

EDGE_POLICY = Path(__file__).resolve().parent.parent / "deploy" / "policy-edge.yaml"
CHROME = {
    "host": "www.example.org",
    "sec-ch-ua": '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"',
    "sec-ch-ua-mobile": "?0",
    "sec-ch-ua-platform": '"Linux"',
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
    "sec-fetch-site": "same-origin",
    "sec-fetch-mode": "navigate",
    "sec-fetch-dest": "document",
    "accept-encoding": "gzip, deflate, br",
    "accept-language": "en-GB,en;q=0.9",
}
CURL = {"host": "www.example.org", "user-agent": "curl/8.5.0", "accept": "*/*"}
AUTH, FORWARD, PAGE, VERIFY = (
    "/.scrapeshield/auth-request", "/.scrapeshield/forward-auth", "/.scrapeshield/page",
    "/.scrapeshield/verify",
)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def action(self) -> str | None:
        return self.headers.get("x-scrapeshield-action")


def call(app: Any, path: str, headers: list[tuple[bytes, bytes]], peer: str = "127.0.0.1",
         method: str = "GET", body: bytes = b"", query: bytes = b"") -> Answer:
    """One raw ASGI request (bytes in, so any garbage a proxy might pass can be sent)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query,
             "headers": headers, "client": (peer, 40000), "server": ("127.0.0.1", 8002)}
    sent: list[dict[str, Any]] = []
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def receive() -> dict[str, Any]:
        return pending.pop() if pending else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    start = sent[0]
    assert start["type"] == "http.response.start"
    out = {k.decode("latin-1"): v.decode("latin-1") for k, v in start["headers"]}
    return Answer(start["status"], out, b"".join(m.get("body", b"") for m in sent[1:]))


def original(uri: str, base: dict[str, str], client: str | None = "203.0.113.10",
             method: str = "GET", family: str = "nginx") -> list[tuple[bytes, bytes]]:
    """The headers a proxy sends: its control headers first (as nginx does), then the client's."""
    names = ("x-original-method", "x-original-uri") if family == "nginx" else (
        "x-forwarded-method", "x-forwarded-uri")
    headers = [(names[0], method), (names[1], uri)]
    if client is not None:
        headers.append(("x-forwarded-for", client))
    headers += list(base.items())
    return [(k.encode(), v.encode("latin-1")) for k, v in headers]


def edge_policy(**changes: Any) -> str:
    data = yaml.safe_load(EDGE_POLICY.read_text())
    data.update(changes)
    return yaml.safe_dump(data, sort_keys=False)


def make(tmp_path: Path, policy: str | None = None) -> tuple[DecisionService, Shield, ManualClock]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy if policy is not None else EDGE_POLICY.read_text())
    clock = ManualClock()
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(path)), clock)
    return DecisionService(shield), shield, clock


def seen(shield: Shield) -> list[tuple[RequestContext, Decision]]:
    """Every (context, decision) the engine makes from now on."""
    log: list[tuple[RequestContext, Decision]] = []
    shield.engine.listeners.append(lambda ctx, decision: log.append((ctx, decision)))
    return log


def solve(page: bytes) -> dict[str, str]:
    """Do what the challenge page's script does: find the proof of work, return the form."""
    data = json.loads(re.search(rb'id="ss-challenge"[^>]*>(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    bits = int(data["difficulty"])
    n = 0
    while int.from_bytes(hashlib.sha256(f"{data['challenge']}:{n}".encode()).digest(), "big") >> (256 - bits):
        n += 1
    return {"token": data["token"], "solution": str(n), "return_to": data["return_to"]}


# -- nginx auth_request ---------------------------------------------------------------------


def test_a_person_is_allowed_with_an_empty_200(tmp_path: Path) -> None:
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    answer = call(app, AUTH, original("/u/alice?tab=posts", CHROME))
    assert (answer.status, answer.body, answer.action) == (200, b"", None)
    ctx, decision = log[0]
    assert (ctx.ip, ctx.method, ctx.path, ctx.route, ctx.record) == (
        "203.0.113.10", "GET", "/u/alice", "profile-page", "username:alice")
    assert ctx.host == "www.example.org" and decision.action.value == "allow"
    # The control headers are the proxy's, not the client's: not in the header set or order.
    assert [n for n, _ in ctx.headers] == ["x-forwarded-for", *CHROME]


def test_debug_headers_tag_allowed_requests(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path, edge_policy(debug_headers=True))
    answer = call(app, AUTH, original("/", CHROME))
    assert answer.status == 200 and answer.action == "allow" and "x-scrapeshield-score" in answer.headers


def test_http_library_is_challenged_with_401_and_a_link_to_the_page(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path)
    answer = call(app, AUTH, original("/u/alice?x=1&y=2", CURL))
    assert (answer.status, answer.action, answer.body) == (401, "challenge", b"")
    assert answer.headers["cache-control"] == "no-store"
    link = urlsplit(answer.headers["x-scrapeshield-challenge"])
    assert link.path == PAGE and dict(parse_qsl(link.query)) == {"return_to": "/u/alice?x=1&y=2"}
    # The page nginx shows for it (error_page → /page with the decision), and the same page
    # at the link the header names.
    for headers, query in ((original("/u/alice?x=1&y=2", CURL) + [(b"x-scrapeshield-action", b"challenge")],
                            b""), (original("/u/alice?x=1&y=2", CURL), link.query.encode())):
        page = call(app, PAGE, headers, query=query)
        assert (page.status, page.action) == (403, "challenge")
        assert b"Checking your browser" in page.body and solve(page.body)["return_to"] == "/u/alice?x=1&y=2"


def test_the_401_carries_the_page_data_that_nginx_fills_in(tmp_path: Path) -> None:
    """nginx serves the page file with the 401's data in place of its marker: that page must
    be the one the service would have served, and its challenge must be solvable."""
    app, _, _ = make(tmp_path)
    robot = {**CHROME, "user-agent": CHROME["user-agent"].replace("Chrome/", "HeadlessChrome/")}
    answer = call(app, AUTH, original("/u/alice?tab=posts", robot))
    assert (answer.status, answer.action) == (401, "challenge")
    data = answer.headers[CHALLENGE_DATA_HEADER]
    assert data.isascii() and "\n" not in data and "<" not in data
    filled = template().replace(MARKER.encode(), data.encode())
    decided = [(b"x-scrapeshield-action", b"challenge")]
    served = call(app, PAGE, original("/u/alice?tab=posts", robot) + decided)
    theirs = re.search(rb'id="ss-challenge"[^>]*>(.*?)</script>', served.body, re.S).group(1)  # type: ignore[union-attr]
    assert served.body.replace(theirs, data.encode()) == filled  # the same page but for its challenge
    form = solve(filled)
    assert form["return_to"] == "/u/alice?tab=posts"
    body = "&".join(f"{k}={v}" for k, v in form.items()).encode()
    client = [(b"x-forwarded-for", b"203.0.113.10"), *[(k.encode(), v.encode()) for k, v in robot.items()]]
    verified = call(app, VERIFY, client, method="POST", body=body)
    assert verified.status == 303 and verified.headers["location"] == "/u/alice?tab=posts"


def test_a_challenge_for_a_very_long_uri_is_a_403_without_data(tmp_path: Path) -> None:
    """Data too long for nginx's header buffer: 403 (nginx then asks /page), never a head
    that could fail the subrequest and so let the request through."""
    app, _, _ = make(tmp_path)
    uri = "/u/alice?" + "a=b&" * 250  # as a return_to, and quoted again in the link: over 2 KiB
    assert len(uri) <= MAX_RETURN_TO
    answer = call(app, AUTH, original(uri, CURL))
    assert (answer.status, answer.action) == (403, "challenge")
    assert CHALLENGE_DATA_HEADER not in answer.headers
    assert sum(len(k) + len(v) + 4 for k, v in answer.headers.items()) < 4096 - 64  # nginx's buffer
    page = call(app, PAGE, original(uri, CURL) + [(b"x-scrapeshield-action", b"challenge")])
    assert (page.status, page.action) == (403, "challenge") and solve(page.body)["return_to"] == uri


def test_the_page_file_for_nginx(tmp_path: Path) -> None:
    page = template()
    assert page.count(MARKER.encode()) == 1 and b"Checking your browser" in page
    target = tmp_path / "sub" / "challenge.html"
    assert write_template(target) == target and target.read_bytes() == page
    assert target.stat().st_mode & 0o777 == 0o644
    assert [p.name for p in target.parent.iterdir()] == ["challenge.html"]  # no temporary left
    (tmp_path / "a-file").write_text("")
    unwritable = str(tmp_path / "a-file" / "page.html")
    result = CliRunner().invoke(main, ["serve-decisions", "--challenge-page", unwritable,
                                       "--port", "0", "--admin-port", "0"])
    assert result.exit_code != 0 and "cannot write the challenge page" in result.output
    assert "Traceback" not in result.output


def test_a_challenge_after_a_post_returns_home(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path)
    answer = call(app, AUTH, original("/login", CURL, method="POST"))
    assert answer.status == 401
    assert answer.headers["x-scrapeshield-challenge"] == f"{PAGE}?return_to=%2F"


def test_throttle_is_403_with_retry_after_and_the_page_is_429(tmp_path: Path) -> None:
    app, _, clock = make(tmp_path)
    answers = []
    for i in range(70):
        clock.advance(0.05)
        answers.append(call(app, AUTH, original("/" if i % 2 else "/search?q=a", CHROME)))
    throttled = [a for a in answers if a.action == "throttle"]
    assert throttled and all(a.status == 403 for a in throttled)
    retry = int(throttled[0].headers["retry-after"])
    assert 1 <= retry <= 10
    # What nginx serves for it: 429 with the Retry-After, JSON for the API, HTML otherwise.
    extra = [(b"x-scrapeshield-action", b"throttle"), (b"x-scrapeshield-retry-after", str(retry).encode())]
    api = call(app, PAGE, original("/api/v1/users/3", CHROME) + extra)
    assert (api.status, api.action, api.headers["retry-after"]) == (429, "throttle", str(retry))
    assert json.loads(api.body)["action"] == "throttle"
    html = call(app, PAGE, original("/", CHROME) + extra)
    assert html.status == 429 and html.headers["content-type"].startswith("text/html")


def test_block_is_403_and_the_page_says_so(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path)
    trap = call(app, AUTH, original("/u/mira.okafor.archive", CHROME))  # the honeypot
    assert (trap.status, trap.action) == (403, "block") and "retry-after" not in trap.headers
    decided = [(b"x-scrapeshield-action", b"block")]
    page = call(app, PAGE, original("/u/mira.okafor.archive", CHROME) + decided)
    assert (page.status, page.action) == (403, "block") and b"Access denied" in page.body


def test_the_page_never_counts_and_refuses_plainly_without_a_decision(tmp_path: Path) -> None:
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    plain = call(app, PAGE, original("/", CHROME))  # a 403 nginx made for another reason
    assert (plain.status, plain.action) == (403, None)
    odd = call(app, PAGE, original("/", CHROME) + [(b"x-scrapeshield-action", b"allow")])
    assert (odd.status, odd.action) == (403, None)
    assert log == []


def test_tarpit_page_waits_then_refuses(tmp_path: Path) -> None:
    rules = [{"name": "slow-down", "match": {"path_prefix": ["/slow"]}, "action": "tarpit"}]
    app, _, _ = make(tmp_path, edge_policy(rules=rules, tarpit={"delay": 0.2}))
    answer = call(app, AUTH, original("/slow", CHROME))
    assert (answer.status, answer.action) == (403, "tarpit") and "retry-after" in answer.headers
    started = time.perf_counter()
    page = call(app, PAGE, original("/slow", CHROME) + [(b"x-scrapeshield-action", b"tarpit")])
    assert time.perf_counter() - started >= 0.2
    assert (page.status, page.action) == (429, "tarpit") and "retry-after" in page.headers


def test_distinct_records_counted_from_the_uri(tmp_path: Path) -> None:
    """A distinct-records limit trips on /api/v1/users/N read through X-Original-URI alone,
    whatever spelling of the path reaches the proxy."""
    limits = [{"name": "profiles", "key": "ip", "window": 600, "limit": 5,
               "distinct_records": True, "action": "block"}]
    app, shield, clock = make(tmp_path, edge_policy(limits=limits, weights={"enumeration.sequential": 0}))
    log = seen(shield)
    uris = ["/api/v1/users/17", "/api/v1/users/%34%32", "/api/v1/users/17?x=1",
            "/static/../api/v1/users/9", "//api//v1/users/23", "/api/v1/users/5/./"]
    answers = []
    for uri in uris:
        clock.advance(1)
        answers.append(call(app, AUTH, original(uri, CHROME)))
    assert [ctx.record for ctx, _ in log] == ["user:17", "user:42", "user:17", "user:9", "user:23", ""]
    assert all(a.status == 200 for a in answers)
    # Five distinct profiles read (17, 42, 9, 23, then 8): the sixth is over the budget.
    for n in (8, 31):
        clock.advance(1)
        answers.append(call(app, AUTH, original(f"/api/v1/users/{n}", CHROME)))
    assert answers[-2].status == 200
    assert (answers[-1].status, answers[-1].action) == (403, "block")
    assert log[-1][1].rule == "limit:profiles"
    # Another client (another X-Forwarded-For from the trusted proxy) has its own budget.
    other = call(app, AUTH, original("/api/v1/users/31", CHROME, client="198.51.100.4"))
    assert other.status == 200


@pytest.mark.parametrize(
    "uri",
    [None, "", "garbage", "*", "http://evil.example/api/v1/users/1", "%zz%", "/\x7f\x01",
     "/" + "a" * 9000, "/..", "/a/../../..", "/\xff\xfe", "?x=1", "/u/%ff%fe", "https://[::1"],
)
def test_missing_or_garbage_uri_gets_a_decision_never_a_500(tmp_path: Path, uri: str | None) -> None:
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    for ask in (CURL, CHROME):
        headers = [h for h in original(uri or "", ask) if uri is not None or h[0] != b"x-original-uri"]
        headers.append((b"x-original-method", b"G\x00T\xff" * 10))
        answer = call(app, AUTH, headers)
        assert answer.status in (200, 401, 403) and answer.body == b""
    assert log and all(ctx.path.startswith("/") and len(ctx.path) <= 2048 for ctx, _ in log)
    forward = call(app, FORWARD, original(uri or "", CURL, family="forward"))
    assert forward.status in (200, 403, 429)


def test_missing_uri_is_reported_once(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    app, _, _ = make(tmp_path)
    with caplog.at_level(logging.WARNING, "scrapeshield.decisions"):
        for _ in range(3):
            call(app, AUTH, [(b"user-agent", b"x")])
    assert len([r for r in caplog.records if "x-original-uri" in r.getMessage()]) == 1


@pytest.mark.parametrize(
    ("uri", "path"),
    [("/u/a?b=c#d", "/u/a"), ("/api/v1/users/%31%32", "/api/v1/users/12"), ("/a/./b/../c", "/a/c"),
     ("//a///b/", "/a/b/"), ("/..", "/"), ("/a/..", "/"), ("/a/b/..", "/a/"),
     ("https://host/x/y?z", "/x/y"), ("", "/"), ("x", "/"), ("/%2e%2e/u/a", "/u/a"),
     ("/u/a#d?x", "/u/a"), ("/a%3Fb?c", "/a?b"), ("/caf%C3%A9%zz", "/café%zz"), ("http://host", "/"),
     ("ftp://host/x", "/"), ("https://host/%2e%2e/x?y", "/x")],
)
def test_the_path_is_the_one_the_proxy_routes_on(uri: str, path: str) -> None:
    assert _path(uri) == path


@pytest.mark.parametrize("target", ["/", "/u/user3", "/~a_b.c-d/", "/a b", "/u/jürgen", "/s?q=1&x=%20",
                                    "/a\n", "/a#b", ""])
def test_the_challenge_link_quotes_as_quote_does(target: str) -> None:
    assert _quoted(target) == quote(target, safe="")


# -- the client address ---------------------------------------------------------------------


def test_forwarded_for_counts_only_from_a_trusted_peer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    with caplog.at_level(logging.WARNING, "scrapeshield.decisions"):
        call(app, AUTH, original("/", CHROME, client="203.0.113.7"))  # nginx on 127.0.0.1
        call(app, AUTH, original("/", CHROME, client="203.0.113.7, 127.0.0.1"))  # its own hop
        call(app, AUTH, original("/", CHROME, client="6.6.6.6, 203.0.113.7"))  # a client's own XFF
        for _ in range(2):
            call(app, AUTH, original("/", CHROME, client="203.0.113.7"), peer="192.0.2.50")
    assert [ctx.ip for ctx, _ in log] == [
        "203.0.113.7", "203.0.113.7", "203.0.113.7", "192.0.2.50", "192.0.2.50"]
    warned = [r.getMessage() for r in caplog.records if "trusted_proxies" in r.getMessage()]
    assert len(warned) == 1 and "192.0.2.50" in warned[0]


def test_x_real_ip_counts_only_without_forwarded_for(tmp_path: Path) -> None:
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    call(app, AUTH, original("/", CHROME, client=None) + [(b"x-real-ip", b"198.51.100.23")])
    call(app, AUTH, original("/", CHROME, client="203.0.113.8") + [(b"x-real-ip", b"198.51.100.23")])
    call(app, AUTH, original("/", CHROME, client=None) + [(b"x-real-ip", b"198.51.100.23")],
         peer="192.0.2.50")
    assert [ctx.ip for ctx, _ in log] == ["198.51.100.23", "203.0.113.8", "192.0.2.50"]
    assert all("x-real-ip" not in dict(ctx.headers) for ctx, _ in log)


# -- forward-auth (Caddy, Traefik) -----------------------------------------------------------


def test_forward_auth_answers_what_the_client_gets(tmp_path: Path) -> None:
    app, shield, clock = make(tmp_path)
    log = seen(shield)
    ok = call(app, FORWARD, original("/u/alice", CHROME, family="forward"))
    assert (ok.status, ok.body, ok.action) == (200, b"", None)
    challenge = call(app, FORWARD, original("/u/alice?p=2", CURL, family="forward"))
    assert (challenge.status, challenge.action) == (403, "challenge")
    assert solve(challenge.body)["return_to"] == "/u/alice?p=2"
    # Each endpoint reads only its own pair: X-Original-URI means nothing to forward-auth.
    call(app, FORWARD, original("/u/alice", CHROME, family="forward") + [(b"x-original-uri", b"/")])
    assert [ctx.path for ctx, _ in log] == ["/u/alice", "/u/alice", "/u/alice"]
    for _ in range(70):
        clock.advance(0.05)
        last = call(app, FORWARD, original("/", CHROME, family="forward"))
    assert (last.status, last.action) == (429, "throttle") and int(last.headers["retry-after"]) >= 1


def test_forward_auth_takes_the_host_from_x_forwarded_host(tmp_path: Path) -> None:
    """Traefik sends the original Host as X-Forwarded-Host (its own request names the service)."""
    app, shield, _ = make(tmp_path)
    log = seen(shield)
    headers = original("/", {**CHROME, "host": "127.0.0.1:8002"}, family="forward")
    call(app, FORWARD, [*headers, (b"x-forwarded-host", b"www.example.org")])
    assert log[0][0].host == "www.example.org"


# -- the challenge, end to end through the service -----------------------------------------------


def test_solved_challenge_sets_a_pass_that_lets_the_client_through(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path)
    robot = {**CHROME, "user-agent": CHROME["user-agent"].replace("Chrome/", "HeadlessChrome/")}
    assert call(app, AUTH, original("/u/alice", robot)).status == 401
    page = call(app, PAGE, original("/u/alice", robot) + [(b"x-scrapeshield-action", b"challenge")])
    form = "&".join(f"{k}={v}" for k, v in solve(page.body).items()).encode()
    client = [(b"x-forwarded-for", b"203.0.113.10"), (b"x-forwarded-proto", b"https"),
              *[(k.encode(), v.encode()) for k, v in robot.items()]]
    elsewhere = [(b"x-forwarded-for", b"198.51.100.1"), *client[1:]]
    wrong_net = call(app, VERIFY, elsewhere, method="POST", body=form)
    assert (wrong_net.status, wrong_net.action) == (403, "challenge")
    verified = call(app, VERIFY, client, method="POST", body=form)
    assert verified.status == 303 and verified.headers["location"] == "/u/alice"
    cookie = verified.headers["set-cookie"]
    assert cookie.startswith("__scrapeshield_pass=") and "HttpOnly" in cookie and "Secure" in cookie
    value = cookie.split(";")[0]
    again = call(app, AUTH, original("/u/bob", robot) + [(b"cookie", value.encode())])
    assert (again.status, again.action) == (200, None)
    # Replayed, or from another network: no second pass.
    assert call(app, VERIFY, client, method="POST", body=form).status == 403
    assert call(app, VERIFY, client, method="GET").status == 405
    assert call(app, VERIFY, client, method="POST", body=b"x" * 9000).status == 413


# -- never a 500 -----------------------------------------------------------------------------


@pytest.mark.parametrize(("mode", "auth", "forward"), [("open", 200, 200), ("closed", 403, 503)])
def test_internal_failure_answers_with_the_fail_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mode: str, auth: int, forward: int
) -> None:
    app, shield, _ = make(tmp_path, edge_policy(fail_mode=mode))

    monkeypatch.setattr(shield, "engine", FailingContexts(shield.engine))
    assert call(app, AUTH, original("/", CURL)).status == auth
    assert call(app, FORWARD, original("/", CURL, family="forward")).status == forward
    assert call(app, PAGE, original("/", CURL)).status == 403
    assert call(app, VERIFY, original("/", CURL), method="POST", body=b"a=b").status == 403


def test_unknown_paths_and_other_scopes(tmp_path: Path) -> None:
    app, _, _ = make(tmp_path)
    assert call(app, "/", original("/", CHROME)).status == 404
    assert call(app, "/.scrapeshield/auth", original("/", CHROME)).status == 404

    async def lifespan() -> list[str]:
        messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
        out: list[str] = []

        async def receive() -> dict[str, str]:
            return messages.pop(0)

        async def send(message: dict[str, str]) -> None:
            out.append(message["type"])

        await app({"type": "lifespan"}, receive, send)
        return out

    assert asyncio.run(lifespan()) == ["lifespan.startup.complete", "lifespan.shutdown.complete"]


# -- the same decisions as in-process ------------------------------------------------------------


def test_same_decisions_as_the_asgi_middleware(tmp_path: Path) -> None:
    """One request sequence, decided in-process and at the edge on the same clock: same actions."""

    async def hello(request: Request) -> Response:
        return PlainTextResponse("hello")

    app = Starlette(routes=[Route("/{rest:path}", hello)])
    in_dir, edge_dir = tmp_path / "in", tmp_path / "edge"
    in_dir.mkdir()
    edge_dir.mkdir()
    service, edge_shield, edge_clock = make(edge_dir)
    settings = Settings.resolve(data_dir=str(in_dir), policy_path=str(EDGE_POLICY))
    inproc_shield = Shield(settings, ManualClock())
    inproc_clock: ManualClock = inproc_shield.clock  # type: ignore[assignment]
    middleware = ScrapeshieldMiddleware(app, inproc_shield)
    visits: list[tuple[str, dict[str, str], str]] = []
    for i in range(1, 120):  # a naive crawler, a person, a script with a browser's user-agent
        visits.append(("203.0.113.1", CURL, f"/api/v1/users/{i}"))
        if i % 6 == 0:
            visits.append(("203.0.113.2", CHROME, ["/", "/static/app.css", f"/u/user{i}"][i % 3]))
        visits.append(("203.0.113.3", {"user-agent": CHROME["user-agent"], "accept": "*/*"},
                       f"/api/v1/users/{500 - i}"))

    async def inproc(ip: str, headers: dict[str, str], path: str) -> str | None:
        transport = httpx.ASGITransport(app=middleware, client=(ip, 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://www.example.org") as client:
            response = await client.get(path, headers=headers)
        return response.headers.get("x-scrapeshield-action")

    async def at_edge(ip: str, headers: dict[str, str], path: str) -> str | None:
        # What Caddy sends: the client's headers plus its own, from the proxy's address.
        transport = httpx.ASGITransport(app=service, client=("127.0.0.1", 5000))
        extra = {"x-forwarded-method": "GET", "x-forwarded-uri": path, "x-forwarded-for": ip}
        async with httpx.AsyncClient(transport=transport, base_url="http://www.example.org") as client:
            response = await client.get(FORWARD, headers={**headers, **extra})
        return response.headers.get("x-scrapeshield-action")

    ours: list[str | None] = []
    edge: list[str | None] = []
    for ip, headers, path in visits:
        inproc_clock.advance(0.2)
        edge_clock.advance(0.2)
        ours.append(asyncio.run(inproc(ip, headers, path)))
        edge.append(asyncio.run(at_edge(ip, headers, path)))
    assert edge == ours
    assert {"challenge", "block", None} <= set(edge)


# -- the command ------------------------------------------------------------------------------


def test_serve_decisions_warns_when_no_proxy_is_trusted(tmp_path: Path) -> None:
    """The port is taken, so the command stops right after its start-up checks."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        args = ["serve-decisions", "--port", str(busy.getsockname()[1]), "--admin-port", "0",
                "--data-dir", str(tmp_path)]
        default = CliRunner().invoke(main, args)
        edge = CliRunner().invoke(main, [*args, "--policy", str(EDGE_POLICY)])
    assert default.exit_code == edge.exit_code == 1
    assert "trusted_proxies is empty" in default.output and "cannot listen" in default.output
    assert "trusted_proxies is empty" not in edge.output and "cannot listen" in edge.output



@pytest.mark.parametrize("state", ["memory", "redis"])
def test_serve_decisions_over_http_contains_a_crawler_and_passes_a_browser(
    tmp_path: Path, state: str, request: pytest.FixtureRequest
) -> None:
    """The command's own server on a real socket, with keep-alive as nginx uses it; with Redis
    state every decision is awaited (the server's task path), in memory none is."""
    args = ["serve-decisions", "--policy", str(EDGE_POLICY)]
    if state == "redis":
        args += ["--state", request.getfixturevalue("redis_server").url]
    server = start_cli(args, tmp_path)
    try:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            browser = client.get(AUTH, headers=dict(original("/", CHROME, "198.51.100.7")))
            assert browser.status_code == 200 and "x-scrapeshield-action" not in browser.headers
            crawled = [client.get(AUTH, headers=dict(original(f"/api/v1/users/{i}", CURL,
                                                              "198.51.100.8")))
                       for i in range(1, 300)]
            refused = [r for r in crawled if r.status_code != 200]
            assert refused and {r.status_code for r in refused} <= {401, 403}
            assert refused[-1].headers["x-scrapeshield-action"] in ("throttle", "block", "challenge")
            page = client.get(PAGE, headers={**dict(original("/api/v1/users/1", CURL, "198.51.100.8")),
                                             "x-scrapeshield-action": "block"})
            assert page.status_code == 403 and page.headers["x-scrapeshield-action"] == "block"
    finally:
        server.stop()
