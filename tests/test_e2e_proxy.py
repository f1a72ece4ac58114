"""`scrapeshield proxy` in front of an app that is not the shield, over real HTTP on loopback.

Two upstreams run as their own processes: the demo social network alone under uvicorn (no
shield inside it), and a tiny ASGI echo app that reports what reached it. Each simulated client
uses its own loopback source address (127.0.0.x), so the shield tracks each one separately.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from servers import Server, chrome_headers, free_port, start_cli

from scrapeshield.events import Pseudonymiser
from scrapeshield.settings import Settings

DEMO_UPSTREAM = (
    "import sys, uvicorn; from scrapeshield.demo.app import create_demo_app; "
    "from scrapeshield.demo.population import Population; "
    "uvicorn.run(create_demo_app(Population.generate(2000, 7)), host='127.0.0.1', "
    "port=int(sys.argv[1]), log_level='warning')"
)

# A plain ASGI app: /big?n=N streams N chunks of 64 KiB (chunked, no length), /drip sends one
# line, pauses, sends another; anything else echoes what arrived as JSON.
ECHO_UPSTREAM = r'''
import asyncio, base64, json, sys
import uvicorn

CHUNK = 65536

async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            else:
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/big":
        n = int(scope["query_string"].decode().partition("=")[2])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(n):
            await send({"type": "http.response.body", "body": (b"%08d" % i) * (CHUNK // 8),
                        "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if scope["path"] == "/drip":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first\n", "more_body": True})
        await asyncio.sleep(1.5)
        await send({"type": "http.response.body", "body": b"second\n"})
        return
    payload = json.dumps({
        "method": scope["method"],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
        "query_string": scope["query_string"].decode("latin-1"),
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "body": base64.b64encode(body).decode(),
        "peer": scope["client"][0],
    }).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"set-cookie", b"echo=1; Path=/; HttpOnly"),
        (b"x-upstream", b"echo"),
    ]})
    await send({"type": "http.response.body", "body": payload})

uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning")
'''

BIG_CHUNKS = 80  # 80 x 64 KiB = 5 MiB


# -- processes ------------------------------------------------------------------------------


class Upstream:
    """An upstream app in its own process, restartable on the same port."""

    def __init__(self, code: str, log_path: Path, port: int | None = None) -> None:
        self.code = code
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Upstream:
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-c", self.code, str(self.port)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"upstream exited early:\n{self.log_path.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"upstream did not start:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("proxy")


@pytest.fixture(scope="module")
def policy_file(workdir: Path) -> Path:
    text = subprocess.run([sys.executable, "-m", "scrapeshield", "policy", "default"],
                          check=True, capture_output=True, text=True).stdout
    path = workdir / "policy.yaml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def dataset(workdir: Path) -> dict[int, dict[str, Any]]:
    path = workdir / "users.jsonl"
    subprocess.run([sys.executable, "-m", "scrapeshield", "demo", "--users", "2000", "--seed", "7",
                    "--export-dataset", str(path)], check=True, capture_output=True)
    users = [json.loads(line) for line in path.read_text().splitlines()]
    return {u["id"]: u for u in users}


@pytest.fixture(scope="module")
def demo_proxy(workdir: Path, policy_file: Path) -> Iterator[Server]:
    upstream = Upstream(DEMO_UPSTREAM, workdir / "demo-upstream.log").start()
    data = workdir / "demo-proxy"
    data.mkdir()
    try:
        server = start_cli(["proxy", "--upstream", upstream.url, "--policy", str(policy_file)], data)
        yield server
        server.stop()
    finally:
        upstream.stop()


@pytest.fixture(scope="module")
def echo_proxy(workdir: Path, policy_file: Path) -> Iterator[Server]:
    upstream = Upstream(ECHO_UPSTREAM, workdir / "echo-upstream.log").start()
    data = workdir / "echo-proxy"
    data.mkdir()
    try:
        server = start_cli(["proxy", "--upstream", upstream.url, "--policy", str(policy_file)], data)
        yield server
        server.stop()
    finally:
        upstream.stop()


def client(server: Server, source: str, **kwargs: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, transport=transport, timeout=15, **kwargs)


def person(server: Server, source: str) -> httpx.Client:
    return client(server, source, headers=chrome_headers(server.url.removeprefix("http://")),
                  follow_redirects=False)


def is_real_profile(response: httpx.Response) -> bool:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("id"), int) and "username" in body


# -- the demo app behind the proxy ------------------------------------------------------------


def test_naive_crawler_contained(demo_proxy: Server, dataset: dict[int, dict[str, Any]]) -> None:
    responses: list[httpx.Response] = []
    took: list[float] = []
    with client(demo_proxy, "127.0.0.31") as crawler:  # python-httpx user-agent, no pauses
        for i in range(1, 301):
            started = time.perf_counter()
            responses.append(crawler.get(f"/api/v1/users/{i}"))
            took.append(time.perf_counter() - started)
    # Refusals are answered at once (a ~40 ms median means Nagle/delayed-ACK stalls are back).
    assert statistics.median(took) < 0.03, statistics.median(took)
    real = [r.json() for r in responses if is_real_profile(r)]
    assert len(real) <= 36, len(real)
    # What did get through is the genuine record, unaltered, straight from the upstream.
    for record in real:
        truth = dataset[record["id"]]
        assert (record["username"], record["phone"], record["email"]) == (
            truth["username"], truth["phone"], truth["email"])
    altered = [r for r in responses if not is_real_profile(r)]
    assert len(altered) >= 264
    actions = [r.headers.get("x-scrapeshield-action") for r in altered]
    assert all(actions), [(r.url, r.status_code) for r in altered if "x-scrapeshield-action" not in r.headers]
    assert set(actions) <= {"challenge", "throttle", "block"}, set(actions)
    assert all(r.status_code in (403, 429) for r in altered)


def test_person_browsing_untouched(demo_proxy: Server) -> None:
    base = demo_proxy.url
    with person(demo_proxy, "127.0.0.32") as browser:
        seen: list[httpx.Response] = []
        home = browser.get("/")
        seen.append(home)
        assert "Murmur" in home.text
        assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)))
        assert "/static/app.css" in assets and "/static/app.js" in assets
        for asset in assets[:6]:
            seen.append(browser.get(asset, headers={"sec-fetch-dest": "style", "referer": base + "/"}))
        profiles = [p for p in re.findall(r'href="(/u/[^"]+)"', home.text) if "archive" not in p]
        assert len(profiles) >= 5
        for path in profiles[:5]:
            time.sleep(0.1)  # think time
            page = browser.get(path, headers={"referer": base + "/"})
            seen.append(page)
            assert 'class="email"' in page.text or 'class="phone"' in page.text, page.text[:300]
        search = browser.get("/search", params={"q": "an"}, headers={"referer": base + "/"})
        seen.append(search)
    assert all(r.status_code == 200 for r in seen), [(r.url, r.status_code) for r in seen]
    assert not any("x-scrapeshield-action" in r.headers for r in seen)
    # The query string reached the upstream: the page answers the search, not an empty form.
    assert "People matching “an”" in search.text and 'class="card"' in search.text
    assert seen[1].content == (Path(__file__).parents[1] / "scrapeshield/demo/static"
                               / seen[1].url.path.removeprefix("/static/")).read_bytes()


def test_login_through_proxy(demo_proxy: Server, dataset: dict[int, dict[str, Any]]) -> None:
    user = dataset[17]
    with person(demo_proxy, "127.0.0.33") as browser:
        browser.get("/login")
        form = {"origin": demo_proxy.url, "referer": demo_proxy.url + "/login",
                "sec-fetch-mode": "navigate", "cache-control": "max-age=0"}
        wrong = browser.post("/login", data={"username": user["username"], "password": "nope"},
                             headers=form)
        assert wrong.status_code == 401 and "Wrong username or password" in wrong.text
        assert "x-scrapeshield-action" not in wrong.headers
        ok = browser.post("/login", data={"username": user["username"], "password": user["password"]},
                          headers=form)
        assert ok.status_code == 303 and ok.headers["location"] == "/", (ok.status_code, ok.text[:200])
        assert "x-scrapeshield-action" not in ok.headers
        cookie = ok.headers["set-cookie"]
        assert re.match(rf"sid={user['id']}\.[\w-]+;", cookie), cookie
        assert "httponly" in cookie.lower()
        home = browser.get("/")  # the client keeps the cookie: signed in as that user
        assert home.status_code == 200 and f"@{user['username']}" in home.text


def test_spoofed_forwarded_for_does_not_change_the_client(demo_proxy: Server) -> None:
    rng = random.Random(11)
    fakes: set[str] = set()
    with client(demo_proxy, "127.0.0.35") as crawler:
        responses = []
        for i in range(1, 301):
            fake = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            fakes.add(fake)
            responses.append(crawler.get(f"/api/v1/users/{i}", headers={"x-forwarded-for": fake}))
    assert sum(1 for r in responses if is_real_profile(r)) <= 36
    pseudonym = Pseudonymiser(Settings.resolve(str(demo_proxy.data_dir)).derived_key("pseudonym"))
    with demo_proxy.admin() as admin:
        decisions = admin.get("/api/decisions", params={"limit": 1000}).json()["decisions"]
    clients = {d["client"] for d in decisions}
    # Every refusal of this crawler is booked on its real address, none on the spoofed ones.
    assert sum(1 for d in decisions if d["client"] == pseudonym("127.0.0.35")) >= 264
    assert not clients & {pseudonym(f) for f in fakes}


def test_dot_segments_cannot_smuggle_a_profile_past_the_shield(demo_proxy: Server) -> None:
    # To the shield /static/../api/v1/users/N is an asset (free); resolved, it is a profile.
    for path in (b"/static/../api/v1/users/5", b"/static/%2e%2e/api/v1/users/6",
                 b"/static/%2E%2E%2Fapi/v1/users/7", b"/u/./x", b"/static/./app.css"):
        status, body = _raw_get(demo_proxy, "127.0.0.37", path)
        assert status == 400 and b'"username"' not in body, (path, status, body[:200])
    status, body = _raw_get(demo_proxy, "127.0.0.37", b"/static/app.css")
    assert status == 200 and body


def _raw_get(server: Server, source: str, target: bytes) -> tuple[int, bytes]:
    """GET with the request target exactly as given (httpx would resolve dot segments)."""
    host, port = server.url.removeprefix("http://").split(":")
    headers = chrome_headers(f"{host}:{port}")
    headers.pop("accept-encoding")
    with socket.create_connection((host, int(port)), timeout=10, source_address=(source, 0)) as sock:
        lines = [b"GET " + target + b" HTTP/1.1", *(f"{k}: {v}".encode() for k, v in headers.items()),
                 b"connection: close", b"", b""]
        sock.sendall(b"\r\n".join(lines))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


# -- what reaches the upstream, and what comes back ------------------------------------------


def echo(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert response.headers.get("x-upstream") == "echo"
    data: dict[str, Any] = response.json()
    return data


def header_values(data: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in data["headers"] if k == name]


def test_query_string_and_path_arrive_intact(echo_proxy: Server) -> None:
    with person(echo_proxy, "127.0.0.41") as browser:
        query = "a=1&b=%2F&c=%C3%A9&empty=&a=2&plus=x+y"
        seen = echo(browser.get(f"/p%20q/r;v=1/x?{query}"))
        assert seen["method"] == "GET"
        assert seen["raw_path"] == "/p%20q/r;v=1/x"
        assert seen["query_string"] == query
        assert seen["body"] == ""
        # No body sent, none forwarded (not an empty chunked one).
        assert not header_values(seen, "transfer-encoding") and not header_values(seen, "content-length")
        bare = echo(browser.get("/plain"))
        assert bare["path"] == "/plain" and bare["query_string"] == ""


def test_request_bodies_arrive_intact(echo_proxy: Server) -> None:
    payload = random.Random(5).randbytes(300_000)
    with person(echo_proxy, "127.0.0.42") as browser:
        sized = echo(browser.post("/upload?kind=sized", content=payload,
                                  headers={"content-type": "application/octet-stream"}))
        assert base64.b64decode(sized["body"]) == payload
        assert header_values(sized, "content-length") == [str(len(payload))]
        assert sized["query_string"] == "kind=sized"

        def chunks() -> Iterator[bytes]:
            for start in range(0, len(payload), 7_000):
                yield payload[start:start + 7_000]

        chunked = echo(browser.put("/upload", content=chunks(),
                                   headers={"content-type": "application/octet-stream"}))
        assert chunked["method"] == "PUT"
        assert base64.b64decode(chunked["body"]) == payload
        form = echo(browser.post("/form", data={"username": "zoë", "password": "p&ss=wörd"}))
        assert base64.b64decode(form["body"]) == b"username=zo%C3%AB&password=p%26ss%3Dw%C3%B6rd"
        assert header_values(form, "content-type") == ["application/x-www-form-urlencoded"]


def test_upstream_sees_the_real_client(echo_proxy: Server) -> None:
    proxy_host = echo_proxy.url.removeprefix("http://")
    with person(echo_proxy, "127.0.0.43") as browser:
        seen = echo(browser.get("/who"))
        assert header_values(seen, "x-forwarded-for") == ["127.0.0.43"]
        assert header_values(seen, "x-forwarded-proto") == ["http"]
        assert header_values(seen, "x-forwarded-host") == [proxy_host]
        assert header_values(seen, "user-agent") == [chrome_headers("")["user-agent"]]
        assert header_values(seen, "host") != [proxy_host]  # the upstream's own name
        # A client's own X-Forwarded-For is kept, with the real peer appended last.
        spoofed = echo(browser.get("/who", headers={"x-forwarded-for": "6.6.6.6"}))
        assert header_values(spoofed, "x-forwarded-for") == ["6.6.6.6, 127.0.0.43"]
        # An untrusted client's claims of scheme and host are replaced by the proxy's own.
        claims = {"x-forwarded-proto": "https", "x-forwarded-host": "evil.example", "x-real-ip": "6.6.6.6"}
        claimed = echo(browser.get("/who", headers=claims))
        assert header_values(claimed, "x-forwarded-proto") == ["http"]
        assert header_values(claimed, "x-forwarded-host") == [proxy_host]
        assert header_values(claimed, "x-real-ip") == []


def test_response_headers_come_back(echo_proxy: Server) -> None:
    with person(echo_proxy, "127.0.0.44") as browser:
        response = browser.get("/cookie")
    echo(response)
    assert response.headers.get_list("set-cookie") == ["echo=1; Path=/; HttpOnly"]
    assert len(response.headers.get_list("date")) == 1
    assert "x-scrapeshield-action" not in response.headers


def test_large_response_streams_through_intact(echo_proxy: Server) -> None:
    expected = hashlib.sha256(b"".join((b"%08d" % i) * 8192 for i in range(BIG_CHUNKS))).hexdigest()
    with person(echo_proxy, "127.0.0.45") as browser:
        response = browser.get("/big", params={"n": BIG_CHUNKS})
        assert response.status_code == 200
        assert len(response.content) == BIG_CHUNKS * 65536
        assert hashlib.sha256(response.content).hexdigest() == expected
        assert "x-scrapeshield-action" not in response.headers
        # Streamed, not buffered: the first line arrives while the upstream is still pausing.
        started = time.monotonic()
        with browser.stream("GET", "/drip") as drip:
            parts = drip.iter_raw()
            first = next(parts)
            first_at = time.monotonic() - started
            rest = b"".join(parts)
        assert first == b"first\n" and rest == b"second\n"
        assert first_at < 1.0, first_at


# -- upstream outages -----------------------------------------------------------------------


def test_upstream_down_gives_502_and_recovers(workdir: Path, policy_file: Path) -> None:
    upstream = Upstream(ECHO_UPSTREAM, workdir / "flaky-upstream.log")
    data = workdir / "flaky-proxy"
    data.mkdir()
    server = start_cli(["proxy", "--upstream", upstream.url, "--policy", str(policy_file)], data)
    try:
        with person(server, "127.0.0.46") as browser:
            for _ in range(3):
                started = time.monotonic()
                down = browser.get("/x", params={"y": "1"})
                assert down.status_code == 502 and down.text == "bad gateway"
                assert time.monotonic() - started < 5
            assert browser.post("/x", content=b"z" * 100_000).status_code == 502
            upstream.start()
            back = echo(browser.get("/x", params={"y": "2"}))
            assert back["query_string"] == "y=2"
            upstream.stop()
            assert browser.get("/x").status_code == 502
            upstream.start()
            assert echo(browser.post("/x", content=b"again"))["body"] == base64.b64encode(b"again").decode()
            # The upstream dies in the middle of an answer: the client must see it cut short.
            with browser.stream("GET", "/drip") as drip:
                parts = drip.iter_raw()
                assert next(parts) == b"first\n"
                assert upstream.process is not None
                upstream.process.kill()
                with pytest.raises(httpx.RemoteProtocolError):
                    b"".join(parts)
            upstream.stop()
            assert browser.get("/x").status_code == 502
        assert server.process.poll() is None
        with server.admin() as admin:
            assert admin.get("/healthz").text == "ok"
        log = server.log()
        assert "Traceback" not in log and "ConnectError" in log and "failed mid-response" in log
        assert "HTTP Request:" not in log  # no log line per proxied request
    finally:
        server.stop()
        upstream.stop()
