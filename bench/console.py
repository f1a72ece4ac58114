"""Console responsiveness with one million stored events: each page under 300 ms.

One million events are bulk-inserted into a fresh SQLite database (the embedded default),
spread over the last 24 hours (then again all within the last ten minutes, a flood, for the
pages that look at recent traffic): 20,000 ordinary clients, 40 heavy scrapers (one with 60,000
events), 30 campaigns over them, 200 cases and a few hundred audit rows. Then every console
page is requested through the real console app in-process (Starlette, signed in as an
admin; no network), once to warm up and ``ROUNDS`` times measured. Printed per page: median
and worst time in ms. Run: ``python -m bench.run console`` (or ``python -m bench.console``).
"""

from __future__ import annotations

import json
import random
import re
import sqlite3
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapeshield.admin.api import create_admin_app  # noqa: E402
from scrapeshield.console.cases import Cases  # noqa: E402
from scrapeshield.console.users import Users  # noqa: E402
from scrapeshield.runtime import Shield  # noqa: E402
from scrapeshield.settings import Settings  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

EVENTS = 1_000_000
ROUNDS = 5
BUDGET_MS = 300.0
PASSWORD = "bench password 0123"
AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 Version/17.5 Mobile Safari",
    "python-requests/2.32.3", "curl/8.5.0", "Scrapy/2.11.2 (+https://scrapy.org)",
]
ROUTES = [("profile-api", "/api/v1/users/{}"), ("profile-page", "/u/user{}"), ("home", "/"),
          ("followers", "/api/v1/users/{}/followers"), ("search", "/api/v1/search?q=a{}")]


def populate(shield: Shield, now: float, seed: int = 1, span: float = 86400.0) -> dict[str, Any]:
    rng = random.Random(seed)
    pseudo = shield.pseudonymise
    people = [pseudo(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}") for i in range(20_000)]
    scrapers = [pseudo(f"198.51.{i // 250}.{i % 250}") for i in range(40)]
    networks = {c: pseudo(f"net-{i // 50}") for i, c in enumerate(people + scrapers)}
    heavy = scrapers[0]

    def rows() -> Any:
        for n in range(EVENTS):
            if n % 17 == 0:
                client, action, score = heavy, "block", 95.0
            elif n % 3 == 0:
                client, score = rng.choice(scrapers), 80.0
                action = rng.choice(["block", "challenge", "throttle"])
            else:
                client, action, score = rng.choice(people), "allow", rng.random() * 30
            route, path = rng.choice(ROUTES)
            record = rng.randrange(1, 200_000)
            yield (f"b-{n}", now - span + n * span / EVENTS, client, networks[client], "GET",
                   path.format(record), route, f"user:{record}" if "users" in path else "",
                   AGENTS[hash(client) % len(AGENTS)], f"acct{rng.randrange(5000)}" if n % 11 == 0 else "",
                   f"fp{hash(client) % 997:04d}", action, score, "score",
                   json.dumps(["behaviour.breadth (+30): read many profiles"]))

    path = shield.settings.db_url.removeprefix("sqlite:///")
    started = time.perf_counter()
    conn = sqlite3.connect(path)
    conn.executemany(
        "INSERT INTO events (uid, ts, client, network, method, path, route, record, user_agent, account, "
        "fingerprint, action, score, rule, reasons) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows())
    for i in range(30):
        members = scrapers[i % 40: i % 40 + 8] or scrapers[:8]
        cid = f"cmp-bench{i:03d}"
        conn.execute("INSERT INTO campaigns (id, kind, key, label, first_seen, last_seen, clients, requests, "
                     "records, score, status, action, reasons, updated_at) "
                     "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                     (cid, "pacing", f"bench{i}", f"pace bench{i}", now - 86400, now - i,
                      len(members), 50_000, 40_000, 90.0 - i, "active", "", '["shared fingerprint"]', now))
        for m in members:
            conn.execute("INSERT INTO campaign_members (campaign_id, client, first_seen, last_seen, "
                         "requests, records, accounts) VALUES (?,?,?,?,?,?,?)",
                         (cid, m, now - 86400, now, 5000, 4000, "[]"))
    conn.commit()
    conn.close()
    insert_seconds = time.perf_counter() - started
    cases = Cases(shield.db.engine)
    for i in range(200):
        case_id = cases.open(f"bench case {i}", "admin", now, links=(("campaign", f"cmp-bench{i % 30:03d}"),))
        cases.note(case_id, "admin", "looked at it", now)
    for i in range(500):
        shield.db.audit(now, "admin", "list.add", {"n": i})
    return {"insert_seconds": round(insert_seconds, 1), "heavy": heavy, "scraper": scrapers[3],
            "case": 1, "campaign": "cmp-bench000"}


def run(events: int = EVENTS) -> dict[str, Any]:
    """Events over a day, then (a flood) all of them in the last ten minutes."""
    global EVENTS
    EVENTS = events
    print("  -- one million events over 24 hours", flush=True)
    day = measure(86400.0)
    print("  -- one million events in the last 10 minutes (a flood)", flush=True)
    flood = measure(600.0, only=("overview", "overview JSON (polled)", "client (60k events)", "search IP",
                                 "search user-agent"))
    slow = [f"{n} (day)" for n, t in day["pages"].items() if t["median_ms"] > BUDGET_MS]
    slow += [f"{n} (flood)" for n, t in flood["pages"].items() if t["median_ms"] > BUDGET_MS]
    return {"budget_ms": BUDGET_MS, "day": day, "flood": flood, "over_budget": slow}


def measure(span: float, only: tuple[str, ...] = ()) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        shield = Shield(Settings.resolve(tmp))
        now = shield.clock.now()
        Users(shield.db.engine).add("admin", "admin", PASSWORD, now)
        facts = populate(shield, now, span=span)
        app = create_admin_app(shield, "bench-token")
        pages = {
            "overview": "/console/", "overview JSON (polled)": "/console/api/overview",
            "campaigns": "/console/campaigns", "campaign": f"/console/campaigns/{facts['campaign']}",
            "client (60k events)": f"/console/clients/{facts['heavy']}",
            "client (scraper)": f"/console/clients/{facts['scraper']}",
            "cases": "/console/cases", "case": f"/console/cases/{facts['case']}", "alerts": "/console/alerts",
            "lists": "/console/lists", "audit": "/console/audit", "users": "/console/users",
            "policy": "/console/policy", "legal": "/console/legal",
            "search IP": "/console/search?q=198.51.0.3", "search account": "/console/search?q=acct42",
            "search fingerprint": "/console/search?q=fp0042",
            "search user-agent (no match)": "/console/search?q=nothing-like-this",
            "search user-agent": "/console/search?q=Scrapy",
        }
        times: dict[str, dict[str, float]] = {}
        with TestClient(app) as client:
            form = client.get("/console/login").text
            token = re.search(r'name="login_csrf" value="([^"]+)"', form)
            assert token
            client.post("/console/login", data={"username": "admin", "password": PASSWORD,
                                                "login_csrf": token.group(1)})
            for name, url in pages.items():
                if only and name not in only:
                    continue
                assert client.get(url).status_code == 200, url
                samples = []
                for _ in range(ROUNDS):
                    started = time.perf_counter()
                    response = client.get(url)
                    samples.append((time.perf_counter() - started) * 1000)
                    assert response.status_code == 200
                times[name] = {"median_ms": round(statistics.median(samples), 1),
                               "worst_ms": round(max(samples), 1)}
                print(f"  {name:32s} median {times[name]['median_ms']:7.1f} ms   worst "
                      f"{times[name]['worst_ms']:7.1f} ms", flush=True)
        count = shield.db.count_events()
        shield.close()
    return {"events": count, "insert_seconds": facts["insert_seconds"], "pages": times}


if __name__ == "__main__":
    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else EVENTS), indent=2))
