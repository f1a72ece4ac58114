"""Live mode: real scraping tools against a running ``scrapeshield demo``, over real HTTP.

Each tool runs as the scraper persona it embodies, from its own source addresses in
127.0.0.0/8 (sockets bound to 127.x.y.z; the browser through ``BoundProxy``), within a
request and time budget. What each tool obtained is checked against the exported
ground truth (``truth.GroundTruth``): only responses that carry a user's real unique
fields count.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from scrapeshield.clock import monotonic
from scrapeshield.simulate.truth import GroundTruth

TOOLS = ("httpx", "curl_cffi", "curl_cffi-rotating", "scrapy", "chromium")


@dataclass(slots=True)
class LiveTally:
    tool: str
    persona: str
    requests: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    profiles: set[int] = field(default_factory=set)
    addresses: set[str] = field(default_factory=set)
    seconds: float = 0.0
    error: str = ""  # why the tool stopped early (the demo unreachable, the tool missing)

    def saw(self, status: int, action: str, real: int | None) -> None:
        self.requests += 1
        self.actions[action or ("allow" if status < 400 else f"http-{status}")] += 1
        if real is not None:
            self.profiles.add(real)

    def as_dict(self) -> dict[str, Any]:
        return {"tool": self.tool, "persona": self.persona, "requests": self.requests,
                "actions": dict(sorted(self.actions.items())), "real_profiles": len(self.profiles),
                "addresses": len(self.addresses), "seconds": round(self.seconds, 1),
                **({"error": self.error} if self.error else {})}


def _address(rng: random.Random, block: int) -> str:
    return f"127.{block}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def httpx_naive(base: str, truth: GroundTruth, limit: int, rng: random.Random, deadline: float) -> LiveTally:
    """The naive crawler: python-httpx, one address, profile ids in order, no pauses."""
    import httpx

    tally = LiveTally("httpx", "naive crawler")
    source = _address(rng, 10)
    tally.addresses.add(source)
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=base, transport=transport, timeout=10) as client:
        for uid in range(1, limit + 1):
            if monotonic() > deadline:
                break
            r = client.get(f"/api/v1/users/{uid}")
            tally.saw(r.status_code, r.headers.get("x-scrapeshield-action", ""),
                      truth.real_json(r.text) if r.status_code == 200 else None)
    return tally


def curl_cffi_impersonator(base: str, truth: GroundTruth, limit: int, rng: random.Random, deadline: float,
                           rotate: bool = False) -> LiveTally:
    """curl_cffi impersonating Chrome (TLS and headers), profile pages in random order; from
    one address, or (``rotate``) a fresh address every 1-5 requests with a retry per target."""
    from curl_cffi import requests as cffi

    tally = LiveTally("curl_cffi-rotating" if rotate else "curl_cffi",
                      "rotating proxies" if rotate else "browser impersonator")
    targets = rng.sample(truth.usernames, min(limit, len(truth.usernames)))
    source, left = _address(rng, 20 if rotate else 11), 5
    with cffi.Session(impersonate="chrome") as session:
        for name in targets:
            if tally.requests >= limit or monotonic() > deadline:
                break
            if rotate and left <= 0:
                source, left = _address(rng, 20), rng.randint(1, 5)
            left -= 1
            tally.addresses.add(source)
            r = session.get(f"{base}/u/{name}", interface=source, timeout=10)
            tally.saw(r.status_code, r.headers.get("x-scrapeshield-action", ""),
                      truth.real_html(r.text) if r.status_code == 200 else None)
    return tally


def rotating_impersonator(base: str, truth: GroundTruth, limit: int, rng: random.Random,
                          deadline: float) -> LiveTally:
    return curl_cffi_impersonator(base, truth, limit, rng, deadline, rotate=True)


def scrapy_spider(base: str, truth: GroundTruth, limit: int, rng: random.Random,
                  deadline: float) -> LiveTally:
    """A stock Scrapy spider (its own process: Twisted's reactor runs once per process)."""
    tally = LiveTally("scrapy", "framework spider")
    source = _address(rng, 12)
    tally.addresses.add(source)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "items.jsonl"
        timeout = max(5.0, deadline - monotonic())
        try:
            subprocess.run([sys.executable, "-m", "scrapeshield.simulate.live_scrapy", base, str(out), source,
                            str(limit)], timeout=timeout, check=False, capture_output=True)
        except subprocess.TimeoutExpired:
            pass
        if out.exists():
            for line in out.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                real = truth.real_html(row["body"]) if row["status"] == 200 and row["body"] else None
                tally.saw(row["status"], row["action"], real)
        if not tally.requests:
            tally.error = "the spider got no response (is the demo running at that address?)"
    return tally


def chromium_browser(base: str, truth: GroundTruth, limit: int, rng: random.Random, deadline: float,
                     pages_per_address: int = 40) -> LiveTally:
    """Headless Chromium under Playwright: full page loads (assets, scripts, the challenge solved
    by its own script), through a proxy that connects out from a new address per session."""
    from playwright.sync_api import sync_playwright

    from scrapeshield.simulate.live_proxy import BoundProxy

    tally = LiveTally("chromium", "headless browser")
    targets = rng.sample(truth.usernames, min(limit, len(truth.usernames)))
    with sync_playwright() as pw:
        while targets and tally.requests < limit and monotonic() < deadline:
            source = _address(rng, 30)
            tally.addresses.add(source)
            with BoundProxy(source) as proxy:
                browser = pw.chromium.launch(executable_path=_chromium(), args=[
                    *_CHROMIUM_ARGS, f"--proxy-server=http://127.0.0.1:{proxy.port}",
                    "--proxy-bypass-list=<-loopback>"])
                try:
                    page = browser.new_page()
                    for _ in range(pages_per_address):
                        if not targets or tally.requests >= limit or monotonic() > deadline:
                            break
                        _browse(page, f"{base}/u/{targets.pop()}", truth, tally)
                finally:
                    browser.close()
    return tally


_CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]


def _chromium() -> str:
    return "/usr/bin/chromium"


def _browse(page: Any, url: str, truth: GroundTruth, tally: LiveTally) -> None:
    """One profile visit; every document response on the way (a challenge, then the profile
    its script returns to) is counted as the browser received it."""
    documents: list[Any] = []

    def seen(response: Any) -> None:
        if response.request.resource_type == "document":
            documents.append(response)

    page.on("response", seen)
    try:
        page.goto(url, wait_until="load", timeout=15_000)
        for _ in range(40):  # a challenge page solves itself and navigates on (bounded wait)
            last = documents[-1] if documents else None
            if last is None or last.headers.get("x-scrapeshield-action") != "challenge":
                break
            page.wait_for_timeout(500)
        page.wait_for_load_state("load", timeout=10_000)
        content = page.content()
    except Exception:  # noqa: BLE001 - a navigation that never settled: counted, nothing obtained
        content = ""
    finally:
        page.remove_listener("response", seen)
    for i, response in enumerate(documents):
        final = i == len(documents) - 1
        real = truth.real_html(content) if final and response.status == 200 and content else None
        tally.saw(response.status, response.headers.get("x-scrapeshield-action", ""), real)


RUNNERS: dict[str, Callable[..., LiveTally]] = {
    "httpx": httpx_naive,
    "curl_cffi": curl_cffi_impersonator,
    "curl_cffi-rotating": rotating_impersonator,
    "scrapy": scrapy_spider,
    "chromium": chromium_browser,
}


def run_live(base: str, truth: GroundTruth, tools: tuple[str, ...] = TOOLS, *, limit: int = 300,
             seconds: float = 30.0, seed: int = 1) -> list[LiveTally]:
    """Each tool in turn, at most ``limit`` requests and ``seconds`` each."""
    out = []
    for name in tools:
        began = monotonic()
        rng = random.Random(f"{seed}:{name}")
        try:
            tally = RUNNERS[name](base.rstrip("/"), truth, limit, rng, began + seconds)
        except Exception as exc:  # noqa: BLE001 - one tool failing must not hide the others' results
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            tally = LiveTally(name, "", error=f"{type(exc).__name__}: {first}")
        tally.seconds = monotonic() - began
        out.append(tally)
    return out
