"""A WSGI site under a real gunicorn, and the clients the end-to-end tests send at it.

Used by tests/test_e2e_wsgi.py: the same scenarios run
against both frameworks. Each simulated client has its own loopback source address.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import time
from importlib import resources
from pathlib import Path

import httpx
from servers import Process, chrome_headers, free_port

HERE = Path(__file__).resolve().parent
_DATA = re.compile(r'<script type="application/json" id="ss-challenge">(.*?)</script>', re.S)


Gunicorn = Process  # a gunicorn master: its address and log


def gunicorn_args() -> list[str]:
    """Options for a private gunicorn: no control socket shared with other runs (gunicorn ≥ 27)."""
    import gunicorn.config  # type: ignore[import-untyped]

    known = {setting.name for setting in gunicorn.config.KNOWN_SETTINGS}
    return ["--no-control-socket"] if "control_socket_disable" in known else []


def start_gunicorn(target: str, data_dir: Path, env: dict[str, str] | None = None) -> Gunicorn:
    """``gunicorn -w 1 TARGET`` on a free loopback port, from tests/wsgi_apps; waits until it answers."""
    port = free_port()
    log_path = data_dir / f"gunicorn-{port}.log"
    environ = {**os.environ, "SCRAPESHIELD_DATA_DIR": str(data_dir), "PYTHONUNBUFFERED": "1",
               **(env or {})}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-w", "1", "-b", f"127.0.0.1:{port}",
             "--chdir", str(HERE), "--graceful-timeout", "5", *gunicorn_args(), target],
            stdout=log, stderr=subprocess.STDOUT, env=environ,
        )
    server = Gunicorn(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gunicorn exited early:\n{server.log()}")
        try:
            httpx.get(server.url + "/robots.txt", timeout=1)
            return server
        except httpx.HTTPError:
            time.sleep(0.05)
    server.stop()
    raise RuntimeError(f"gunicorn did not start:\n{server.log()}")


def client(url: str, source: str, headers: dict[str, str] | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=url, transport=transport, timeout=15, headers=headers)


def is_real_profile(response: httpx.Response) -> bool:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("id"), int) and "username" in body


def naive_crawler(url: str, source: str) -> list[httpx.Response]:
    """One IP, python-httpx's user-agent, profile ids in order, no pauses."""
    with client(url, source) as scraper:
        return [scraper.get(f"/api/v1/users/{i}") for i in range(1, 301)]


def person(url: str, source: str) -> list[httpx.Response]:
    """Chrome: the home page, its stylesheet, then a few profiles with think time."""
    host = url.removeprefix("http://")
    seen: list[httpx.Response] = []
    with client(url, source, chrome_headers(host)) as browser:
        home = browser.get("/")
        seen.append(home)
        seen.append(browser.get("/static/site.css", headers={
            "accept": "text/css,*/*;q=0.1", "sec-fetch-dest": "style", "sec-fetch-mode": "no-cors",
            "referer": url + "/"}))
        for link in re.findall(r'href="(/api/v1/users/\d+)"', home.text)[:5]:
            time.sleep(0.2)
            seen.append(browser.get(link, headers={"referer": url + "/"}))
    return seen


def solve(page: str) -> dict[str, str]:
    """The form a browser's solver would post for a challenge page."""
    match = _DATA.search(page)
    assert match, "no challenge data in the page"
    data = json.loads(match.group(1))
    bits, nonce = int(data["difficulty"]), 0
    while int.from_bytes(hashlib.sha256(f"{data['challenge']}:{nonce}".encode()).digest()) >> (256 - bits):
        nonce += 1
    return {"token": data["token"], "solution": str(nonce), "return_to": data["return_to"]}


# -- the scenarios, each asserted the same way for every framework ------------------------


def check_naive_crawler_contained(url: str, source: str) -> None:
    responses = naive_crawler(url, source)
    obtained = sum(1 for r in responses if is_real_profile(r))
    assert obtained <= 36, obtained
    altered = [r for r in responses if not is_real_profile(r)]
    assert altered and all(r.headers.get("x-scrapeshield-action") for r in altered)
    assert {r.headers["x-scrapeshield-action"] for r in altered} <= {"challenge", "throttle", "block"}


def check_person_untouched(url: str, source: str) -> None:
    seen = person(url, source)
    assert len(seen) == 7
    assert all(r.status_code == 200 for r in seen), [(r.url, r.status_code) for r in seen]
    assert not any("x-scrapeshield-action" in r.headers for r in seen)
    assert is_real_profile(seen[-1])


def check_challenge_round_trip(url: str, source: str) -> None:
    """A client that solves the page gets its pass cookie and the page it asked for."""
    # Headless Chromium's headers and user-agent: challenged on sight, and its pass answers that
    # (a pass answers whether a browser runs the page; a declared HTTP library that solves the
    # puzzle is still a library). A user-agent of its own: no other check shares its fingerprint.
    headless = {**chrome_headers(url.removeprefix("http://")),
                "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                              "HeadlessChrome/126.0.0.0 Safari/537.36 (round trip)"}
    with client(url, source, headless) as solver:
        first = solver.get("/api/v1/users/7", params={"tab": "posts"})
        assert first.status_code == 403 and first.headers["x-scrapeshield-action"] == "challenge"
        verified = solver.post("/.scrapeshield/verify", data=solve(first.text))
        assert verified.status_code == 303, (verified.status_code, verified.text)
        assert verified.headers["location"] == "/api/v1/users/7?tab=posts"
        assert "__scrapeshield_pass=" in verified.headers["set-cookie"]
        again = solver.get(verified.headers["location"])
        assert is_real_profile(again) and again.json()["id"] == 7


def check_verify_refuses_bad_input(url: str, source: str) -> None:
    with client(url, source) as c:
        assert c.get("/.scrapeshield/verify").status_code == 405
        assert c.post("/.scrapeshield/verify", content=b"token=garbage&solution=1").status_code == 403
        assert c.post("/.scrapeshield/verify", content=bytes(range(256)) * 4).status_code == 403
        assert c.post("/.scrapeshield/verify", content=b"x" * 20_000).status_code == 413


def check_app_errors_stay_the_apps(url: str, source: str) -> None:
    host = url.removeprefix("http://")
    with client(url, source, chrome_headers(host)) as browser:
        response = browser.get("/boom")
    assert response.status_code == 500 and "x-scrapeshield-action" not in response.headers


def check_shield_failure(url: str, source: str, closed: bool) -> None:
    """The crawler's requests, which the shield would refuse, while the shield is broken."""
    with client(url, source) as scraper:
        responses = [scraper.get(f"/api/v1/users/{i}") for i in range(1, 6)]
    if closed:
        assert all(r.status_code == 503 and r.headers["x-scrapeshield-action"] == "block"
                   for r in responses)
    else:
        assert all(is_real_profile(r) for r in responses), [r.status_code for r in responses]


def policy_file(directory: Path, *overrides: str) -> Path:
    """The embedded default policy with top-level lines replaced (``"fail_mode: closed"``)."""
    text = (resources.files("scrapeshield.policy") / "default.yaml").read_text("utf-8")
    for line in overrides:
        key = line.split(":", 1)[0]
        text, found = re.subn(rf"(?m)^{re.escape(key)}:.*$", line, text)
        assert found == 1, key
    path = directory / "policy.yaml"
    path.write_text(text)
    return path


def not_found_policy(directory: Path) -> Path:
    """The default policy with every signal weighed 0 but the 404 share, and debug headers on:
    an allowed answer's X-Scrapeshield-Score is then 25 exactly when the share counted."""
    import yaml

    from scrapeshield.signals.catalog import SIGNALS

    data = yaml.safe_load((resources.files("scrapeshield.policy") / "default.yaml").read_text("utf-8"))
    data["weights"] = {name: 0 for name in SIGNALS if name != "behaviour.not-found"}
    data["debug_headers"] = True
    path = directory / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def check_not_found_share_reported(url: str, guesser: str, reader: str) -> None:
    """The host tells the engine each answer's status: a client that keeps asking for pages
    that do not exist is seen doing so; one whose pages exist is not."""
    host = url.removeprefix("http://")
    scores: dict[str, str] = {}
    for source, missing in ((guesser, True), (reader, False)):
        with client(url, source, chrome_headers(host)) as c:
            for i in range(1, 25):
                response = c.get(f"/no-such-page/{i}" if missing and i % 4 else "/")
                assert response.status_code == (404 if missing and i % 4 else 200)
            scores[source] = response.headers["x-scrapeshield-score"]
    assert scores == {guesser: "25", reader: "0"}
