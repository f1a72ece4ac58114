"""Access logs with known scrapers and people, for tests, benchmarks and demonstrations.

Each client is one persona of the public threat model (``PRODUCT.md``) visiting the demo
social network (``scrapeshield.demo.population``): people read a handful to a few dozen
profiles with think times, assets and referers; scrapers walk ids, impersonate browsers,
follow links into the honeypot or hide in a pool of rotating addresses. The log is written
in nginx's combined format; ``Truth`` says who is who.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from scrapeshield.demo.population import HONEYPOT_USERNAME, Population

SITE = "https://social.example"
BROWSERS = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1",
)
# persona → (user-agent, whether a replay must find it)
SCRAPERS = {
    "naive-crawler": ("python-requests/2.31.0", True),
    "framework-spider": ("Scrapy/2.11.2 (+https://scrapy.org)", True),
    "browser-impersonator": (BROWSERS[0], True),
    "headless-browser": (
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/126.0.0.0 Safari/537.36",
        True,
    ),
    "rotating-proxies": (BROWSERS[0], False),
    "strided-walker": (BROWSERS[1], True),
    "list-pager": ("okhttp/4.12.0", True),
    "path-prober": ("Go-http-client/1.1", True),
}
Event = tuple[float, str]


@dataclass
class Truth:
    """Who each address in the log is."""

    scrapers: dict[str, str] = field(default_factory=dict)  # ip → persona
    people: set[str] = field(default_factory=set)
    lines: int = 0

    def must_find(self) -> set[str]:
        return {ip for ip, persona in self.scrapers.items() if SCRAPERS[persona][1]}


class _Writer:
    def __init__(self) -> None:
        self._stamps: dict[int, str] = {}

    def line(self, ts: float, ip: str, path: str, ua: str, referer: str = "-", status: int = 200) -> Event:
        second = int(ts)
        stamp = self._stamps.get(second)
        if stamp is None:
            stamp = datetime.fromtimestamp(second, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")
            self._stamps[second] = stamp
        size = 900 + (len(path) * 37) % 4000
        return ts, f'{ip} - - [{stamp}] "GET {path} HTTP/1.1" {status} {size} "{referer}" "{ua}"\n'


def generate(
    out: str | Path | IO[str],
    *,
    people: int = 60,
    hours: float = 4.0,
    seed: int = 1,
    start: float = 1_700_000_000.0,
    users: int = 10_000,
    scrapers: int = 1,
    max_lines: int | None = None,
) -> Truth:
    """Write a log; ``scrapers`` is how many clients of each scraping persona take part."""
    rng = random.Random(seed)
    pop = Population.generate(users, seed)
    names = [u.username for u in pop]
    span = hours * 3600
    w = _Writer()
    truth = Truth()
    streams: list[Iterator[Event]] = []
    for i in range(people):
        ip = f"100.{64 + i // 65000 % 60}.{i // 250 % 256}.{i % 250 + 1}"
        truth.people.add(ip)
        streams.append(
            _person(w, random.Random(rng.random()), ip, names, start + rng.random() * span * 0.9, span)
        )
    for k in range(scrapers):
        for j, persona in enumerate(SCRAPERS):
            first = start + rng.random() * span * 0.5
            r = random.Random(rng.random())
            if persona == "rotating-proxies":
                pool = [f"198.{18 + k % 2}.{r.randrange(256)}.{r.randrange(1, 255)}" for _ in range(400)]
                truth.scrapers.update({ip: persona for ip in pool})
                streams.append(_rotating(w, r, pool, users, first))
                continue
            ip = f"203.0.{113 + k // 50}.{(k * len(SCRAPERS) + j) % 250 + 1}"
            truth.scrapers[ip] = persona
            streams.append(_scraper(w, r, persona, ip, names, users, first))
    merged = heapq.merge(*streams)
    if isinstance(out, (str, Path)):
        with open(out, "w", encoding="utf-8") as handle:
            truth.lines = _write(merged, handle, max_lines)
    else:
        truth.lines = _write(merged, out, max_lines)
    return truth


def _write(events: Iterator[Event], handle: IO[str], max_lines: int | None) -> int:
    count = 0
    batch: list[str] = []
    for _, text in events:
        batch.append(text)
        count += 1
        if len(batch) >= 10_000:
            handle.write("".join(batch))
            batch.clear()
        if max_lines is not None and count >= max_lines:
            break
    handle.write("".join(batch))
    return count


def _assets(w: _Writer, t: float, ip: str, ua: str, page: str, extra: list[str]) -> list[Event]:
    return [
        w.line(t + 0.2 + 0.1 * i, ip, a, ua, page)
        for i, a in enumerate(["/static/app.css", "/static/app.js", *extra])
    ]


def _person(
    w: _Writer, r: random.Random, ip: str, names: list[str], t: float, span: float
) -> Iterator[Event]:
    ua = r.choice(BROWSERS)
    for _ in range(r.randint(1, 3)):
        events = [w.line(t, ip, "/", ua, "-"), *_assets(w, t, ip, ua, f"{SITE}/", [])]
        for _ in range(r.randint(3, 30)):
            t += r.uniform(4, 90)
            user = r.randrange(len(names))
            page = f"/u/{names[user]}"
            events.append(w.line(t, ip, page, ua, f"{SITE}/"))
            events += _assets(w, t, ip, ua, f"{SITE}{page}", [f"/static/avatars/{user + 1}.svg"])
            if r.random() < 0.1:
                t += r.uniform(3, 20)
                events.append(
                    w.line(
                        t, ip, f"/api/v1/search?q={names[r.randrange(len(names))][:4]}", ua, f"{SITE}{page}"
                    )
                )
        yield from sorted(events)
        t = events[-1][0] + r.uniform(600, span / 3)


def _scraper(
    w: _Writer, r: random.Random, persona: str, ip: str, names: list[str], users: int, t: float
) -> Iterator[Event]:
    ua = SCRAPERS[persona][0]
    if persona == "naive-crawler":
        first = r.randrange(1, users // 2)
        for user in range(first, first + 3000):
            t += r.uniform(0.05, 0.4)
            yield w.line(t, ip, f"/api/v1/users/{user}", ua)
    elif persona == "framework-spider":
        yield w.line(t, ip, "/robots.txt", ua)
        for n in range(1500):
            t += r.uniform(0.5, 2.0)
            name = HONEYPOT_USERNAME if n == 40 else names[r.randrange(len(names))]
            yield w.line(t, ip, f"/u/{name}", ua, f"{SITE}/")
    elif persona == "strided-walker":  # every 97th id: not sequential, one constant stride
        user = r.randrange(1, 50)
        for _ in range(1200):
            t += r.uniform(1.0, 3.0)
            user = user + 97 if user + 97 < users else r.randrange(1, 50)
            yield w.line(t, ip, f"/api/v1/users/{user}", ua)
    elif persona == "list-pager":  # one follower list, page after page
        for n in range(600):
            t += r.uniform(0.5, 2.0)
            owner = 1 + (n // 40) * 13 % max(1, users - 1)
            yield w.line(t, ip, f"/api/v1/users/{owner}/followers?cursor={n % 40 * 20}", ua)
    elif persona == "path-prober":  # guesses: most paths do not exist
        for n in range(900):
            t += r.uniform(0.3, 1.5)
            path = (
                f"/api/v1/users/{r.randrange(1, users)}"
                if n % 3 == 0
                else f"/backup/{r.randrange(10**6)}.zip"
            )
            yield w.line(t, ip, path, ua, status=200 if n % 3 == 0 else 404)
    elif persona == "browser-impersonator":
        for _ in range(2500):
            t += r.uniform(1.0, 4.0)
            yield w.line(t, ip, f"/api/v1/users/{r.randrange(1, users)}", ua)
    else:  # headless browser: assets and referers, but an automation user-agent
        for _ in range(800):
            t += r.uniform(3, 12)
            user = r.randrange(len(names))
            page = f"/u/{names[user]}"
            yield w.line(t, ip, page, ua, f"{SITE}/")
            yield from _assets(w, t, ip, ua, f"{SITE}{page}", [f"/static/avatars/{user + 1}.svg"])


def _rotating(w: _Writer, r: random.Random, pool: list[str], users: int, t: float) -> Iterator[Event]:
    ua = SCRAPERS["rotating-proxies"][0]
    for _ in range(len(pool) * 3):
        t += r.uniform(0.2, 1.5)
        yield w.line(t, r.choice(pool), f"/api/v1/users/{r.randrange(1, users)}", ua)
