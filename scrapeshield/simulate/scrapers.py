"""The scrapers of the threat model, each as the real tool behaves.

A scraper wants every profile. It reacts to refusals the way its tool does: the
naive crawler ignores them, Scrapy retries a 429 twice and drops a 403, the
sophisticated ones back off or move to a fresh address and retry the same target.
A headless browser runs the challenge's script like any browser.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Callable, Iterator

from scrapeshield.simulate import network
from scrapeshield.simulate.model import DAY, HOST, Actor, Outcome, Req, World
from scrapeshield.simulate.people import Browser, drive, page_assets
from scrapeshield.simulate.tools import (
    CURL_CFFI,
    HEADLESS,
    HEADLESS_STEALTH,
    HTTPX,
    REQUESTS,
    SCRAPY,
    Tool,
    browser_mix,
)
from scrapeshield.types import Action

JSON = "application/json"


def _targets(world: World, share: float = 1.0) -> list[int]:
    n = len(world.population)
    return list(range(1, int(n * share) + 1))


def naive_crawler(world: World) -> Actor:
    """One datacenter IP, python-requests, /api/v1/users/1, 2, 3… with no pause, past the end."""
    ip = network.datacenter(world.rng, 1)[0]
    t = world.start + world.rng.uniform(3600, 7200)
    n = len(world.population)
    for uid in range(1, n + 200):
        t += world.rng.uniform(0.05, 0.15)
        yield Req(t, ip, f"/api/v1/users/{uid}", REQUESTS.page(HOST), REQUESTS.ja4, target=uid,
                  session="naive")


def framework_spider(world: World) -> Actor:
    """Scrapy with its defaults: robots.txt, the feed, profile links, follower pages; obeys robots
    (so no /api/ and no /search); retries a 429 twice, drops other refusals; 8 in flight."""
    ip = network.datacenter(world.rng, 1)[0]
    t = world.start + world.rng.uniform(7200, 10800)
    pop = world.population
    yield Req(t, ip, "/robots.txt", SCRAPY.page(HOST), SCRAPY.ja4, session="scrapy")
    t += 0.05
    yield Req(t, ip, "/", SCRAPY.page(HOST), SCRAPY.ja4, session="scrapy")
    frontier = [world.rng.randrange(1, len(pop) + 1) for _ in range(20)]
    seen: set[int] = set(frontier)
    referer = f"https://{HOST}/"
    budget = len(pop) * 3
    while frontier and budget > 0:
        uid = frontier.pop(0)
        user = pop.by_id(uid)
        if user is None:
            continue
        for _attempt in range(3):
            budget -= 1
            t += world.rng.uniform(0.02, 0.08)  # CONCURRENT_REQUESTS=16, no download delay
            outcome = yield Req(t, ip, f"/u/{user.username}", SCRAPY.page(HOST, referer=referer),
                                SCRAPY.ja4, target=uid, session="scrapy")
            if outcome.action is not Action.THROTTLE:
                break
        if outcome.action is not Action.ALLOW:
            continue
        page_url = f"https://{HOST}/u/{user.username}"
        t += world.rng.uniform(0.02, 0.08)
        budget -= 1
        outcome = yield Req(t, ip, f"/u/{user.username}/followers", SCRAPY.page(HOST, referer=page_url),
                            SCRAPY.ja4, session="scrapy")
        if outcome.action is Action.ALLOW:
            for follower in pop.followers_of(uid)[:50]:
                if follower not in seen:
                    seen.add(follower)
                    frontier.append(follower)
        referer = page_url


def browser_impersonator(world: World) -> Actor:
    """curl_cffi impersonating Chrome 152 (headers and TLS), one IP, profile pages, a steady
    request every two seconds, no assets; waits out a throttle, stops after 200 refusals in a row."""
    ip = network.residential(world.rng, 1)[0]
    t = world.start + world.rng.uniform(0, 3600)
    pop = world.population
    refused = 0
    for uid in world.rng.sample(_targets(world), len(pop)):
        user = pop.by_id(uid)
        assert user is not None
        t += world.rng.uniform(1.8, 2.2)
        outcome = yield Req(t, ip, f"/u/{user.username}", CURL_CFFI.page(HOST), CURL_CFFI.ja4, target=uid,
                            session="impersonator")
        if outcome.action is Action.THROTTLE:
            t += outcome.retry_after
        refused = 0 if outcome.action is Action.ALLOW else refused + 1
        if refused >= 200:
            return


def rotating_proxies(world: World) -> Actor:
    """The impersonator through a residential proxy pool: 1-5 requests per address, then the
    next; a refused target is retried (up to three times) from a fresh address."""
    return _rotating(world, "rotating", lambda: CURL_CFFI)


def _rotating(world: World, session: str, pick: Callable[[], Tool]) -> Actor:
    """Every profile through a residential pool, 1-5 requests per address, a tool drawn per
    address; a refused target goes back in the queue for a fresh address (three tries)."""
    addresses = itertools.cycle(network.residential(world.rng, int(6000 * world.scale) + 50))
    t = world.start + world.rng.uniform(0, 3600)
    pop = world.population
    queue = [(uid, 0) for uid in world.rng.sample(_targets(world), len(pop))]
    left = 0
    ip, tool = next(addresses), CURL_CFFI
    while queue:
        uid, tries = queue.pop(0)
        user = pop.by_id(uid)
        assert user is not None
        if left == 0:
            ip, left, tool = next(addresses), world.rng.randint(1, 5), pick()
        left -= 1
        t += world.rng.uniform(0.8, 1.6)
        outcome = yield Req(t, ip, f"/u/{user.username}", tool.page(HOST, site="none"), tool.ja4,
                            target=uid, session=session)
        if outcome.action is not Action.ALLOW:
            left = 0
            if tries < 2:
                queue.append((uid, tries + 1))


def headless_browser(world: World) -> Actor:
    """Chromium under Playwright: real page loads with assets, runs the challenge's script,
    human-like pauses, all day and night; a new residential address every session of
    ~30 pages; half the fleet hides 'HeadlessChrome' behind a stealth user-agent."""
    pool = network.residential(world.rng, 400)
    pop = world.population
    todo = world.rng.sample(_targets(world), len(pop))
    t = world.start + world.rng.uniform(0, 600)
    end = world.start + DAY
    for n, ip in enumerate(itertools.cycle(pool)):
        if not todo or t >= end:
            return
        tool = HEADLESS if n % 2 else HEADLESS_STEALTH
        b = Browser(world, tool, ip, f"headless-{n}", t)
        yield from drive(b, "/", assets=page_assets(b, [world.rng.randrange(1, len(pop) + 1)
                                                      for _ in range(8)]))
        for _ in range(world.rng.randint(20, 40)):
            if b.gave_up or not todo or b.t >= end:
                break
            uid = todo.pop()
            user = pop.by_id(uid)
            assert user is not None
            b.t += world.think(6, 0.5)
            yield from drive(b, f"/u/{user.username}", uid, page_assets(b, [uid]))
            if b.gave_up:
                todo.append(uid)
        t = b.t + world.rng.uniform(5, 60)


def account_farm(world: World) -> Actor:
    """Forty signed-in accounts, each on its own residential address, reading the JSON API at
    a pace under any per-account hourly budget (200/h), partitioned targets."""
    accounts = 40
    pop = world.population
    ips = network.residential(world.rng, accounts)
    ids = world.rng.sample(range(1, len(pop) + 1), accounts)
    todo = world.rng.sample(_targets(world), len(pop))
    cookies = {a: f"sid={ids[a]}.{world.rng.getrandbits(72):018x}" for a in range(accounts)}
    t = world.start + world.rng.uniform(0, 3600)
    # Sign in, each account once.
    for a in range(accounts):
        t += world.rng.uniform(1, 5)
        user = pop.by_id(ids[a])
        assert user is not None
        yield Req(t, ips[a], "/login", HTTPX.page(HOST, accept=JSON), HTTPX.ja4, "POST", session=f"farm-{a}")
    per_account_gap = 3600 / 200
    clocks = [t + world.rng.uniform(0, per_account_gap) for _ in range(accounts)]
    blocked: set[int] = set()
    while todo and len(blocked) < accounts:
        a = min((x for x in range(accounts) if x not in blocked), key=lambda x: clocks[x])
        uid = todo.pop()
        clocks[a] += world.rng.uniform(0.7, 1.3) * per_account_gap
        headers = HTTPX.page(HOST, accept=JSON, cookie=cookies[a])
        outcome = yield Req(clocks[a], ips[a], f"/api/v1/users/{uid}", headers, HTTPX.ja4, target=uid,
                            session=f"farm-{a}")
        if outcome.action is Action.BLOCK:
            blocked.add(a)
        if outcome.action is not Action.ALLOW:
            todo.insert(0, uid)
            clocks[a] += max(outcome.retry_after, 60.0)


def low_and_slow(world: World) -> Actor:
    """Ten thousand residential addresses, each used once every several minutes at most, one
    profile per request, spread over the whole day: under every per-IP budget there is."""
    pop = world.population
    pool = network.residential(world.rng, int(10_000 * max(world.scale, 0.2)))
    todo = world.rng.sample(_targets(world), len(pop))
    gap = DAY / max(len(todo), 1)
    t = world.start
    for i, uid in enumerate(todo):
        t += world.rng.uniform(0.5, 1.5) * gap
        ip = pool[(i * 7919) % len(pool)]
        user = pop.by_id(uid)
        assert user is not None
        yield Req(t, ip, f"/u/{user.username}", CURL_CFFI.page(HOST), CURL_CFFI.ja4, target=uid,
                  session="low-and-slow")


def search_harvester(world: World) -> Actor:
    """Enumerates users through the search API with a dictionary of two-letter prefixes and
    common names (following cursors), then fetches each profile found; 20 datacenter IPs."""
    ips = itertools.cycle(network.datacenter(world.rng, 20))
    pop = world.population
    t = world.start + world.rng.uniform(0, 7200)
    words = [a + b for a in string.ascii_lowercase for b in "aeiou"]
    world.rng.shuffle(words)
    found: list[int] = []
    known: set[int] = set()
    ip = next(ips)
    for n, word in enumerate(words):
        if n % 10 == 0:
            ip = next(ips)
        after = 0
        for _page in range(10):
            t += world.rng.uniform(0.3, 0.7)
            hits = pop.search(word, limit=20, after=after)
            path = f"/api/v1/search?q={word}" + (f"&cursor=p{after}" if after else "")
            outcome: Outcome = yield Req(t, ip, path, HTTPX.page(HOST, accept=JSON), HTTPX.ja4,
                                         session="harvester")
            if outcome.action is not Action.ALLOW or len(hits) < 20:
                break
            for user in hits:
                if user.id not in known:
                    known.add(user.id)
                    found.append(user.id)
            after = hits[-1].id
        while found:
            uid = found.pop()
            t += world.rng.uniform(0.3, 0.7)
            outcome = yield Req(t, ip, f"/api/v1/users/{uid}", HTTPX.page(HOST, accept=JSON), HTTPX.ja4,
                                target=uid, session="harvester")
            if outcome.action is not Action.ALLOW:
                ip = next(ips)


def fake_googlebot(world: World) -> Actor:
    """A scraper claiming to be Googlebot from ordinary hosting addresses."""
    from scrapeshield.simulate.tools import GOOGLEBOT

    ips: Iterator[str] = itertools.cycle(network.datacenter(world.rng, 5))
    ip = next(ips)
    t = world.start + world.rng.uniform(0, 7200)
    pop = world.population
    for uid in world.rng.sample(_targets(world), len(pop)):
        user = pop.by_id(uid)
        assert user is not None
        t += world.rng.uniform(0.2, 0.6)
        outcome = yield Req(t, ip, f"/u/{user.username}", GOOGLEBOT.page(HOST), GOOGLEBOT.ja4.replace(
            "t13d1515h2", "t13d1812h1"), target=uid, session="fake-googlebot")
        if outcome.action is not Action.ALLOW:
            ip = next(ips)


def rotating_fingerprints(world: World) -> Actor:
    """A scraping API's pool: residential addresses, 1-5 requests each, and a different
    impersonated browser (Chrome, Safari, Firefox; version, platform, language) per address,
    drawn from the same mix people use, so no fingerprint is the scraper's own."""
    mix = browser_mix()
    weights, tools = [w for w, _ in mix], [t for _, t in mix]
    return _rotating(world, "rotating-fingerprints", lambda: world.rng.choices(tools, weights)[0])
