"""A real nginx with auth_request, configured by deploy/nginx/scrapeshield.conf, in front of the
demo app (alone under uvicorn, no shield inside it) and asking `scrapeshield serve-decisions`.
Caddy with deploy/caddy/Caddyfile likewise, at the end.

Each simulated client uses its own loopback source address (127.0.0.x); nginx connects to the
decision service from 127.0.0.1, which deploy/policy-edge.yaml trusts, so the service counts each
client under its own address.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from browser import launch_chromium
from playwright.sync_api import Browser, Response, sync_playwright
from servers import Server, chrome_headers, free_port, start_cli

from scrapeshield.events import Pseudonymiser
from scrapeshield.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
NGINX_CONF = ROOT / "deploy" / "nginx" / "scrapeshield.conf"
CADDYFILE = ROOT / "deploy" / "caddy" / "Caddyfile"
EDGE_POLICY = ROOT / "deploy" / "policy-edge.yaml"
NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ACTION = "x-scrapeshield-action"
VERIFY_PATH = "/.scrapeshield/verify"
DEMO_UPSTREAM = (
    "import sys, uvicorn; from scrapeshield.demo.app import create_demo_app; "
    "from scrapeshield.demo.population import Population; "
    "uvicorn.run(create_demo_app(Population.generate(2000, 7)), host='127.0.0.1', "
    "port=int(sys.argv[1]), log_level='warning')"
)
UNIX_SERVER = "# server unix:/run/scrapeshield/decisions.sock;"
# The shipped nginx file's fail-open lines, and what its comment says to make of them to fail closed.
FAIL_OPEN = (
    "        proxy_pass http://scrapeshield_site;\n"
    "        # add_header X-Scrapeshield-Action block always;\n"
    "        # return 503;\n"
)
FAIL_CLOSED = (
    "        # proxy_pass http://scrapeshield_site;\n"
    "        add_header X-Scrapeshield-Action block always;\n"
    "        return 503;\n"
)


# -- processes ------------------------------------------------------------------------------


def wait_for_port(port: int, process: subprocess.Popen[bytes], log: Path, what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not start:\n{log.read_text(errors='replace')}")


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    url: str
    log: Path

    def stop(self) -> None:
        stop(self.process)


def start_upstream(workdir: Path) -> Proc:
    port, log = free_port(), workdir / "upstream.log"
    with log.open("ab") as out:
        process = subprocess.Popen([sys.executable, "-c", DEMO_UPSTREAM, str(port)],
                                   stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, log, "the demo upstream")
    except RuntimeError:
        stop(process)
        raise
    return Proc(process, f"http://127.0.0.1:{port}", log)


def site_conf(listen: int, decisions: int | Path, site: int, page: Path, fail_closed: bool = False) -> str:
    """The shipped nginx file with only its addresses and the challenge page's path changed (and
    its fail-mode lines, when asked). ``decisions``: a port, or a Unix socket (the file's
    commented Unix-socket server line then replaces the TCP one)."""
    text = NGINX_CONF.read_text()
    tcp = "server 127.0.0.1:8002;"
    servers = ([(tcp, f"# {tcp}"), (UNIX_SERVER, f"server unix:{decisions};")]
               if isinstance(decisions, Path) else [(tcp, f"server 127.0.0.1:{decisions};")])
    for old, new in (("listen 80;", f"listen 127.0.0.1:{listen};"), *servers,
                     ("server 127.0.0.1:9000;", f"server 127.0.0.1:{site};"),
                     ("alias /var/lib/scrapeshield/challenge.html;", f"alias {page};"),
                     *([(FAIL_OPEN, FAIL_CLOSED)] if fail_closed else [])):
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    return text


def start_nginx(workdir: Path, site: str) -> Proc:
    """nginx in the foreground with everything it writes under ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "site.conf").write_text(site)
    temp = " ".join(f"{kind}_temp_path {workdir / kind};"
                    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    user = "user root root;\n" if os.geteuid() == 0 else ""  # workers may then write under /tmp
    (workdir / "nginx.conf").write_text(
        f"{user}daemon off;\nworker_processes 1;\npid {workdir / 'nginx.pid'};\n"
        f"error_log {workdir / 'error.log'} info;\nevents {{ worker_connections 1024; }}\n"
        f"http {{\n  access_log {workdir / 'access.log'};\n  {temp}\n"
        f"  include {workdir / 'site.conf'};\n}}\n")
    args = [NGINX, "-p", str(workdir), "-c", str(workdir / "nginx.conf"), "-e", str(workdir / "error.log")]
    check = subprocess.run([*args, "-t"], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    port = int(re.search(r"listen 127\.0\.0\.1:(\d+);", site).group(1))  # type: ignore[union-attr]
    log = workdir / "nginx.out"
    with log.open("ab") as out:
        process = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_for_port(port, process, workdir / "error.log", "nginx")
    except RuntimeError:
        stop(process)
        raise
    return Proc(process, f"http://127.0.0.1:{port}", workdir / "error.log")


# -- fixtures -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("edge")


@pytest.fixture(scope="module")
def upstream(workdir: Path) -> Iterator[Proc]:
    proc = start_upstream(workdir)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def decisions(workdir: Path) -> Iterator[Server]:
    data = workdir / "decisions"
    data.mkdir()
    server = start_cli(["serve-decisions", "--policy", str(EDGE_POLICY),
                        "--challenge-page", str(data / "challenge.html")], data)
    yield server
    server.stop()


def port_of(url: str) -> int:
    return int(urlsplit(url).port or 80)


@pytest.fixture(scope="module")
def edge(workdir: Path, upstream: Proc, decisions: Server) -> Iterator[Proc]:
    site = site_conf(free_port(), port_of(decisions.url), port_of(upstream.url),
                     decisions.data_dir / "challenge.html")
    proc = start_nginx(workdir / "nginx", site)
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def users(workdir: Path) -> dict[str, dict[str, Any]]:
    """The upstream's ground truth (same --users/--seed), by username."""
    out = workdir / "users.jsonl"
    subprocess.run([sys.executable, "-m", "scrapeshield", "demo", "--users", "2000", "--seed", "7",
                    "--export-dataset", str(out)], check=True, capture_output=True, timeout=120)
    rows = [json.loads(line) for line in out.read_text().splitlines() if line.strip()]
    return {row["username"]: row for row in rows}


def client(base: str, source: str, **kwargs: Any) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=base, transport=transport, timeout=15, **kwargs)


def is_real_profile(response: httpx.Response) -> bool:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("id"), int) and "username" in body


def headless_headers(base: str) -> dict[str, str]:
    """A headless Chrome's: challenged at once (it says so in its user-agent)."""
    return {**chrome_headers(base.removeprefix("http://")),
            "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
            "HeadlessChrome/126.0.0.0 Safari/537.36"}


def solve(page: str) -> dict[str, str]:
    """What the challenge page's script does: find the proof of work; the form it posts."""
    data = json.loads(re.search(r'id="ss-challenge"[^>]*>(.*?)</script>', page, re.S).group(1))  # type: ignore[union-attr]
    bits, n = int(data["difficulty"]), 0
    while int.from_bytes(hashlib.sha256(f"{data['challenge']}:{n}".encode()).digest(), "big") >> (256 - bits):
        n += 1
    return {"token": data["token"], "solution": str(n), "return_to": data["return_to"]}


# -- through nginx --------------------------------------------------------------------------


def test_naive_crawler_contained_through_nginx(edge: Proc, decisions: Server) -> None:
    with client(edge.url, "127.0.0.11") as crawler:  # python-httpx user-agent, no pauses
        responses = [crawler.get(f"/api/v1/users/{i}") for i in range(1, 301)]
    obtained = sum(1 for r in responses if is_real_profile(r))
    assert obtained <= 36, obtained
    altered = [r for r in responses if not is_real_profile(r)]
    assert len(altered) >= 264
    actions = [r.headers.get(ACTION) for r in altered]
    assert all(actions), [(r.url, r.status_code) for r in altered if ACTION not in r.headers]
    assert set(actions) <= {"challenge", "throttle", "block"}, set(actions)
    assert all(r.status_code in (403, 429) for r in altered)
    challenged = next(r for r in altered if r.headers[ACTION] == "challenge")
    assert "Checking your browser" in challenged.text and challenged.status_code == 403
    # The service counted the crawler under its own address, as nginx passed it on.
    pseudonym = Pseudonymiser(Settings.resolve(str(decisions.data_dir)).derived_key("pseudonym"))
    with decisions.admin() as admin:
        recorded = admin.get("/api/decisions", params={"limit": 1000}).json()["decisions"]
    mine = [d for d in recorded if d["client"] == pseudonym("127.0.0.11")]
    assert len(mine) >= 264 and {d["route"] for d in mine} == {"profile-api"}
    assert {d["record"] for d in mine} >= {f"user:{i}" for i in range(250, 301)}


def test_spoofed_forwarded_for_does_not_help_through_nginx(edge: Proc, decisions: Server) -> None:
    rng = random.Random(3)
    with client(edge.url, "127.0.0.13") as scraper:
        responses = []
        for i in range(1, 201):
            fake = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            responses.append(scraper.get(f"/api/v1/users/{i}", headers={"x-forwarded-for": fake}))
    assert sum(1 for r in responses if is_real_profile(r)) <= 36


def test_person_browsing_untouched_through_nginx(edge: Proc, users: dict[str, dict[str, Any]]) -> None:
    host = edge.url.removeprefix("http://")
    account = next(u for u in users.values() if u["id"] == 42)
    with client(edge.url, "127.0.0.14", headers=chrome_headers(host), follow_redirects=False) as person:
        seen = [person.get("/")]
        home = seen[0]
        assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)))
        for asset in assets[:6]:
            seen.append(person.get(asset, headers={"sec-fetch-dest": "style", "referer": edge.url + "/"}))
        profiles = [p for p in re.findall(r'href="(/u/[^"]+)"', home.text) if "archive" not in p]
        for path in profiles[:5]:
            time.sleep(0.1)  # think time
            seen.append(person.get(path, headers={"referer": edge.url + "/"}))
        seen.append(person.get("/search", params={"q": "an"}))
        signed_in = person.post("/login", data={"username": account["username"],
                                                "password": account["password"]})
    assert signed_in.status_code == 303 and ACTION not in signed_in.headers  # the form reached the site
    assert len(seen) >= 10
    assert all(r.status_code == 200 for r in seen), [(r.url, r.status_code) for r in seen]
    assert not any(ACTION in r.headers for r in seen)
    assert "People matching “an”" in seen[-1].text  # the query string reached the upstream


def test_throttle_through_nginx_is_429_with_retry_after(edge: Proc) -> None:
    host = edge.url.removeprefix("http://")
    with client(edge.url, "127.0.0.15", headers=chrome_headers(host)) as hurried:
        responses = [hurried.get("/") for _ in range(75)]
        api = hurried.get("/api/v1/users/7")
    throttled = [r for r in responses if r.status_code == 429]
    assert throttled and all(r.headers.get(ACTION) == "throttle" for r in throttled)
    assert 1 <= int(throttled[-1].headers["retry-after"]) <= 10
    assert responses[0].status_code == 200 and ACTION not in responses[0].headers
    assert api.status_code == 429 and api.json()["action"] == "throttle"


def test_honeypot_blocked_through_nginx(edge: Proc) -> None:
    with client(edge.url, "127.0.0.16", headers=chrome_headers("x")) as bot:
        trap = bot.get("/u/mira.okafor.archive")
        after = bot.get("/")
    assert (trap.status_code, trap.headers.get(ACTION)) == (403, "block")
    assert (after.status_code, after.headers.get(ACTION)) == (403, "block")
    assert "Access denied" in after.text


def test_challenge_solved_by_a_script_through_nginx(edge: Proc) -> None:
    """The verify location reaches the service, and the pass it sets is honoured."""
    with client(edge.url, "127.0.0.17", headers=headless_headers(edge.url)) as robot:
        first = robot.get("/u/someone?tab=posts")
        assert (first.status_code, first.headers.get(ACTION)) == (403, "challenge")
        form = solve(first.text)
        assert form["return_to"] == "/u/someone?tab=posts"
        assert robot.post(VERIFY_PATH, data={**form, "solution": "x"}).status_code == 403
        verified = robot.post(VERIFY_PATH, data=form)
        assert verified.status_code == 303 and verified.headers["location"] == "/u/someone?tab=posts"
        assert "__scrapeshield_pass" in robot.cookies
        again = robot.get("/")
        assert again.status_code == 200 and ACTION not in again.headers
        assert robot.post(VERIFY_PATH, content=b"x" * 20_000).status_code == 413  # nginx's own limit


def test_unix_socket_between_nginx_and_the_service(workdir: Path, upstream: Proc) -> None:
    """`serve-decisions --unix` with the config's Unix-socket server line: nginx's connections
    count as 127.0.0.1, so its X-Forwarded-For is believed and each client counted under its own
    address; the challenge is solved through it; the socket file goes when the service stops."""
    data = workdir / "unix-decisions"
    data.mkdir()
    sock = data / "decisions.sock"
    service = start_cli(["serve-decisions", "--unix", str(sock), "--policy", str(EDGE_POLICY),
                         "--challenge-page", str(data / "challenge.html")], data)
    try:
        assert sock.is_socket()
        for _ in range(100):  # the ready lines follow the admin API's start closely
            if f"unix:{sock}" in service.log():
                break
            time.sleep(0.1)
        assert f"unix:{sock}" in service.log()
        site = site_conf(free_port(), sock, port_of(upstream.url), data / "challenge.html")
        nginx = start_nginx(workdir / "nginx-unix", site)
        try:
            with client(nginx.url, "127.0.0.31") as crawler:
                responses = [crawler.get(f"/api/v1/users/{i}") for i in range(1, 121)]
            assert sum(1 for r in responses if is_real_profile(r)) <= 36
            assert {r.headers.get(ACTION) for r in responses if not is_real_profile(r)} <= {
                "challenge", "throttle", "block"}
            pseudonym = Pseudonymiser(Settings.resolve(str(data)).derived_key("pseudonym"))
            with service.admin() as admin:
                recorded = admin.get("/api/decisions", params={"limit": 1000}).json()["decisions"]
            assert len([d for d in recorded if d["client"] == pseudonym("127.0.0.31")]) >= 84
            with client(nginx.url, "127.0.0.32", headers=headless_headers(nginx.url)) as robot:
                first = robot.get("/u/someone")
                assert (first.status_code, first.headers.get(ACTION)) == (403, "challenge")
                verified = robot.post(VERIFY_PATH, data=solve(first.text))
                assert verified.status_code == 303 and "__scrapeshield_pass" in robot.cookies
                again = robot.get("/")
                assert again.status_code == 200 and ACTION not in again.headers
        finally:
            nginx.stop()
    finally:
        service.stop()
    assert not sock.exists()


def test_challenge_page_filled_in_by_nginx_and_its_fallback(edge: Proc) -> None:
    """nginx fills in the page file from the 401's data, for any method; data too long for a
    header (a very long URI) takes the /.scrapeshield/page request instead. Same page either way."""
    # An HTTP library's headers of its own (not python-httpx's, which earlier tests get blocked).
    curl = {"user-agent": "curl/8.19.0", "accept": "*/*"}
    with client(edge.url, "127.0.0.19", headers=curl) as bot:  # challenged at once
        pages = [bot.get("/u/someone"), bot.post("/login", data={"a": "b"}), bot.head("/u/other"),
                 bot.get("/u/someone?" + "a=b&" * 250)]
    for page in pages:
        assert (page.status_code, page.headers.get(ACTION)) == (403, "challenge"), page
        assert page.headers["cache-control"] == "no-store"
        assert page.headers["content-type"].startswith("text/html")
    for page in (pages[0], pages[1], pages[3]):
        assert "Checking your browser" in page.text and "@@scrapeshield" not in page.text
    assert solve(pages[0].text)["return_to"] == "/u/someone"
    assert solve(pages[1].text)["return_to"] == "/"  # after a POST: home
    assert solve(pages[3].text)["return_to"] == "/u/someone?" + "a=b&" * 250
    assert pages[2].content == b""


def test_headless_chromium_challenged_and_solves_it_through_nginx(
    edge: Proc, users: dict[str, dict[str, Any]]
) -> None:
    rows = sorted(users.values(), key=lambda u: u["id"])
    target, *others = (rows[i] for i in (1234, 321, 1777))
    path = f"/u/{target['username']}"
    with sync_playwright() as playwright:
        browser: Browser = launch_chromium(playwright)
        try:
            context = browser.new_context()  # unmodified: HeadlessChrome user-agent
            seen: list[tuple[str, str, int, str | None]] = []
            context.on("response", lambda r: seen.append(
                (r.request.method, urlsplit(r.url).path, r.status, r.headers.get(ACTION))))
            page = context.new_page()

            def profile_ok(response: Response) -> bool:
                return urlsplit(response.url).path == path and response.status == 200

            started = time.monotonic()
            with page.expect_response(profile_ok, timeout=20_000):
                page.goto(edge.url + path, wait_until="commit")
            page.locator("section.profile h1").wait_for(timeout=20_000)
            page.wait_for_load_state("load")
            seconds = time.monotonic() - started
            assert "HeadlessChrome/" in page.evaluate("navigator.userAgent")
            assert seen[0] == ("GET", path, 403, "challenge"), seen
            verify = [s for s in seen if s[1] == VERIFY_PATH]
            assert [(s[0], s[2]) for s in verify] == [("POST", 303)], seen
            landed = seen[seen.index(verify[0]) + 1]
            assert landed == ("GET", path, 200, None), seen
            assert page.url == edge.url + path and seconds < 15
            assert page.locator("section.profile h1").inner_text().strip() == target["name"]
            assert page.locator("dd.email").inner_text() == target["email"]
            cookie = [c for c in context.cookies() if c["name"] == "__scrapeshield_pass"]
            assert len(cookie) == 1 and cookie[0]["httpOnly"]
            # Next pages go straight through with the pass.
            mark = len(seen)
            for other in others:
                response = page.goto(f"{edge.url}/u/{other['username']}")
                assert response is not None and response.status == 200
                assert response.headers.get(ACTION) is None
                assert page.locator("section.profile h1").inner_text().strip() == other["name"]
            page.wait_for_load_state("networkidle")
            later = seen[mark:]
            assert later and not [s for s in later if s[3] is not None or s[2] >= 400], later
            context.close()
        finally:
            browser.close()


# -- the decision service cannot be asked ---------------------------------------------------------


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_decision_service_down(workdir: Path, upstream: Proc, mode: str) -> None:
    """As shipped nginx fails open (the site answers, unprotected); with the two lines its
    comment names swapped, it fails closed with 503."""
    nothing = free_port()  # no decision service listens here
    site = site_conf(free_port(), nothing, port_of(upstream.url), workdir / "no-page.html",
                     fail_closed=mode == "closed")
    proc = start_nginx(workdir / f"nginx-down-{mode}", site)
    try:
        with client(proc.url, "127.0.0.18") as crawler:
            responses = [crawler.get(f"/api/v1/users/{i}") for i in range(1, 6)]
    finally:
        proc.stop()
    if mode == "open":
        assert all(is_real_profile(r) and ACTION not in r.headers for r in responses)
    else:
        assert all((r.status_code, r.headers.get(ACTION)) == (503, "block") for r in responses)
    assert "auth request unexpected status: 502" in proc.log.read_text()


# -- Caddy --------------------------------------------------------------------------------------


def caddy() -> str:
    found = shutil.which("caddy")
    if found is None:
        pytest.skip("caddy is not installed (make system-deps installs Debian's caddy)")
    return found


def test_caddyfile_validates(tmp_path: Path) -> None:
    env = {**os.environ, "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path)}
    command = [caddy(), "validate", "--config", str(CADDYFILE), "--adapter", "caddyfile"]
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Valid configuration" in result.stdout + result.stderr


def start_caddy(home: Path, decisions: int, site: int) -> Proc:
    """Caddy running the shipped Caddyfile with only its addresses changed (admin API off).

    Another process on the machine may take the free port before Caddy binds it (free_port can
    only promise ports within this process): then a new port, at most three times."""
    home.mkdir()
    for attempt in range(3):
        text = CADDYFILE.read_text()
        port = free_port()
        for old, new in ((":8080 {", f"{{\n\tadmin off\n}}\n\n:{port} {{"),
                         ("127.0.0.1:8002", f"127.0.0.1:{decisions}"),
                         ("127.0.0.1:9000", f"127.0.0.1:{site}")):
            assert old in text, old
            text = text.replace(old, new)
        (home / "Caddyfile").write_text(text)
        env = {**os.environ, "HOME": str(home), "XDG_DATA_HOME": str(home), "XDG_CONFIG_HOME": str(home)}
        log = home / f"caddy-{attempt}.log"
        command = [caddy(), "run", "--config", str(home / "Caddyfile"), "--adapter", "caddyfile"]
        with log.open("ab") as out:
            process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=home)
        try:
            wait_for_port(port, process, log, "caddy")
        except RuntimeError:
            stop(process)
            if "address already in use" in log.read_text(errors="replace") and attempt < 2:
                continue
            raise
        return Proc(process, f"http://127.0.0.1:{port}", log)
    raise AssertionError("unreachable")


def test_caddy_forward_auth(
    workdir: Path, upstream: Proc, decisions: Server, users: dict[str, dict[str, Any]]
) -> None:
    """Caddy with the shipped Caddyfile (addresses changed): containment, a person untouched, and
    the challenge page straight from forward_auth, solved and verified through Caddy."""
    proc = start_caddy(workdir / "caddy", port_of(decisions.url), port_of(upstream.url))
    base = proc.url
    host = base.removeprefix("http://")
    try:
        # Caddy passes these on untouched: the service must read neither as the proxy's word.
        spoof = {"x-original-uri": "/", "x-real-ip": "198.51.100.77"}
        with client(base, "127.0.0.21", headers=spoof) as crawler:
            responses = [crawler.get(f"/api/v1/users/{i}") for i in range(1, 201)]
        assert sum(1 for r in responses if is_real_profile(r)) <= 36
        altered = [r for r in responses if not is_real_profile(r)]
        assert altered and all(r.headers.get(ACTION) in ("challenge", "throttle", "block") for r in altered)
        account = next(u for u in users.values() if u["id"] == 42)
        with client(base, "127.0.0.22", headers=chrome_headers(host)) as person:
            seen = [person.get(p) for p in ("/", "/static/app.css", f"/u/{account['username']}")]
            seen.append(person.post("/login", data={"username": account["username"],
                                                    "password": account["password"]}))
        assert [r.status_code for r in seen] == [200, 200, 200, 303]  # the form reached the site
        assert not any(ACTION in r.headers for r in seen)
        with client(base, "127.0.0.23", headers=headless_headers(base)) as robot:
            first = robot.get("/search?q=ann")
            assert (first.status_code, first.headers.get(ACTION)) == (403, "challenge")
            verified = robot.post(VERIFY_PATH, data=solve(first.text))
            assert verified.status_code == 303 and verified.headers["location"] == "/search?q=ann"
            again = robot.get("/search?q=ann")
            assert again.status_code == 200 and ACTION not in again.headers
    finally:
        proc.stop()


def test_caddy_fails_closed_without_the_decision_service(workdir: Path, upstream: Proc) -> None:
    proc = start_caddy(workdir / "caddy-down", free_port(), port_of(upstream.url))
    try:
        with client(proc.url, "127.0.0.24") as anyone:
            answer = anyone.get("/api/v1/users/1")
    finally:
        proc.stop()
    assert answer.status_code == 502 and not is_real_profile(answer)
