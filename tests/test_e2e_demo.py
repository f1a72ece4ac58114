"""The demo behind the shield over real HTTP (uvicorn on loopback), as `scrapeshield demo` runs it.

Each simulated client gets its own loopback source address (127.0.0.x).
"""

from __future__ import annotations

import json
import random
import re
import time

import httpx
from servers import ADMIN_TOKEN, Server, chrome_headers


def client(server: Server, source: str, **kwargs: object) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(base_url=server.url, transport=transport, timeout=15, **kwargs)  # type: ignore[arg-type]


def is_real_profile(response: httpx.Response) -> bool:
    if response.status_code != 200 or "json" not in response.headers.get("content-type", ""):
        return False
    body = response.json()
    return isinstance(body, dict) and isinstance(body.get("id"), int) and "username" in body


def test_naive_scraper_contained(demo: Server) -> None:
    with client(demo, "127.0.0.11") as scraper:  # python-httpx user-agent
        responses = [scraper.get(f"/api/v1/users/{i}") for i in range(1, 301)]
    obtained = sum(1 for r in responses if is_real_profile(r))
    assert obtained <= 36, obtained
    altered = [r for r in responses if not is_real_profile(r)]
    assert altered and all(r.headers.get("x-scrapeshield-action") for r in altered)
    assert {r.headers["x-scrapeshield-action"] for r in altered} <= {"challenge", "throttle", "block"}


def test_curl_like_scraper_with_browser_agent_contained(demo: Server) -> None:
    headers = {"user-agent": chrome_headers("")["user-agent"], "accept": "*/*"}
    with client(demo, "127.0.0.12", headers=headers) as scraper:
        responses = [scraper.get(f"/api/v1/users/{i}") for i in range(1, 401)]
    obtained = sum(1 for r in responses if is_real_profile(r))
    assert obtained <= 36, obtained


def test_spoofed_forwarded_for_from_untrusted_peer_ignored(demo: Server) -> None:
    rng = random.Random(3)
    with client(demo, "127.0.0.13") as scraper:
        responses = []
        for i in range(1, 301):
            fake = f"{rng.randint(1, 223)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
            responses.append(scraper.get(f"/api/v1/users/{i}", headers={"x-forwarded-for": fake}))
    assert sum(1 for r in responses if is_real_profile(r)) <= 36
    with demo.admin() as admin:
        decisions = admin.get("/api/decisions", params={"limit": 1000}).json()["decisions"]
    # Every event is about one pseudonymised client, never the spoofed addresses.
    assert all(d["client"].startswith("p:") for d in decisions)


def test_person_browsing_untouched(demo: Server) -> None:
    host = demo.url.removeprefix("http://")
    with client(demo, "127.0.0.14", headers=chrome_headers(host), follow_redirects=False) as person:
        seen: list[httpx.Response] = []
        home = person.get("/")
        seen.append(home)
        profiles = re.findall(r'href="(/u/[^"]+)"', home.text)
        assert profiles
        for asset in sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)))[:6]:
            seen.append(person.get(asset, headers={"sec-fetch-dest": "style", "referer": demo.url + "/"}))
        visible = [p for p in profiles if "archive" not in p]  # the hidden trap is not clickable
        for path in visible[:5]:
            time.sleep(0.2)  # think time
            seen.append(person.get(path, headers={"referer": demo.url + "/"}))
        seen.append(person.get("/search", params={"q": "an"}))
    assert all(r.status_code == 200 for r in seen), [(r.url, r.status_code) for r in seen]
    assert not any("x-scrapeshield-action" in r.headers for r in seen)


def test_honeypot_link_followed_gets_blocked(demo: Server) -> None:
    with client(demo, "127.0.0.15", headers=chrome_headers("x")) as bot:
        home = bot.get("/")
        trap = next(p for p in re.findall(r'href="(/u/[^"]+)"', home.text) if "archive" in p)
        assert bot.get(trap).headers.get("x-scrapeshield-action") == "block"
        assert bot.get("/").headers.get("x-scrapeshield-action") == "block"


def test_admin_api_needs_the_token(demo: Server) -> None:
    for path in ("/api/policy", "/api/decisions", "/api/clients/top", "/api/lists", "/api/audit"):
        assert httpx.get(demo.admin_url + path).status_code == 401
        wrong = httpx.get(demo.admin_url + path, headers={"authorization": "Bearer nope"})
        assert wrong.status_code == 401
    # The admin API is not on the public port.
    with client(demo, "127.0.0.19", headers=chrome_headers("x")) as person:
        public = person.get("/api/policy", headers={"authorization": f"Bearer {ADMIN_TOKEN}"})
    assert public.status_code == 404 and "trusted_proxies" not in public.text


def test_admin_block_entry_takes_effect_and_expires_on_removal(demo: Server) -> None:
    with demo.admin() as admin, client(demo, "127.0.0.16", headers=chrome_headers("x")) as person:
        assert "x-scrapeshield-action" not in person.get("/").headers
        created = admin.post("/api/lists", json={"kind": "ip", "value": "127.0.0.16", "action": "block",
                                                  "ttl": 600, "reason": "e2e"})
        assert created.status_code == 201, created.text
        blocked = person.get("/")
        assert blocked.status_code == 403 and blocked.headers["x-scrapeshield-action"] == "block"
        assert any(e["value"] == "127.0.0.16" for e in admin.get("/api/lists").json()["entries"])
        assert admin.delete("/api/lists", params={"kind": "ip", "value": "127.0.0.16"}).status_code == 200
        trail = admin.get("/api/audit").json()["entries"]
        assert [e["action"] for e in trail[:2]] == ["list.remove", "list.add"]
        assert trail[1]["detail"]["value"] == "127.0.0.16" and trail[1]["actor"] == "admin-token"
        assert "x-scrapeshield-action" not in person.get("/").headers
        bad = admin.post("/api/lists", json={"kind": "ip", "value": "not-an-ip", "action": "block"})
        assert bad.status_code == 400


def test_decisions_and_top_clients_carry_reasons(demo: Server) -> None:
    with client(demo, "127.0.0.17") as scraper:
        for i in range(1, 40):
            scraper.get(f"/api/v1/users/{i}")
    with demo.admin() as admin:
        decisions = admin.get("/api/decisions", params={"action": "challenge"}).json()["decisions"]
        top = admin.get("/api/clients/top").json()["clients"]
        metrics = admin.get("/metrics").text
    assert decisions and all(d["reasons"] for d in decisions)
    assert any("http-library" in r for d in decisions for r in d["reasons"])
    assert "127.0.0.17" not in json.dumps(decisions)  # pseudonymised
    assert top and top[0]["max_score"] >= 50
    assert re.search(r'scrapeshield_decisions_total\{action="challenge"\} [1-9]', metrics)


def test_malformed_requests_get_answers_not_crashes(demo: Server) -> None:
    with client(demo, "127.0.0.18") as c:
        assert c.get("/api/v1/users/99999999999999999999999").status_code in (404, 403, 429)
        assert c.get("/" + "a" * 6000).status_code in (404, 403, 414, 431, 429)
        huge = c.get("/", headers={"user-agent": "x" * 7000, "x-forwarded-for": "nonsense,,,[::"})
        assert huge.status_code < 500
        assert c.post("/.scrapeshield/verify", content=b"token=garbage&solution=1").status_code == 403
        assert c.post("/.scrapeshield/verify", content=b"x" * 20000).status_code == 413
    with demo.admin() as admin:
        errors = re.search(r"^scrapeshield_decision_errors_total (\S+)", admin.get("/metrics").text, re.M)
    assert errors is not None and float(errors.group(1)) == 0
