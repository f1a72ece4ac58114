"""The distributed scrapers: residential proxy pools (one impersonated build, or a build per
address), a headless browser fleet, an account farm, and the low-and-slow crawl.

Each wants every profile and spreads itself so that no single address or account crosses
a limit; a refused target goes back in the queue for a fresh address or account.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

from scrapeshield.simulate import network
from scrapeshield.simulate.clients import CURL_CFFI, HEADLESS, HEADLESS_STEALTH, HTTPX, browser_mix
from scrapeshield.simulate.model import DAY, HOST, Actor, Req, World
from scrapeshield.simulate.people import Browser, drive, page_assets
from scrapeshield.simulate.scrapers import JSON, all_users
from scrapeshield.simulate.tools import Tool
from scrapeshield.types import Action


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
    queue = [(uid, 0) for uid in world.rng.sample(all_users(world), len(pop))]
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


def rotating_fingerprints(world: World) -> Actor:
    """A scraping API's pool: residential addresses, 1-5 requests each, and a different
    impersonated browser (Chrome, Safari, Firefox; version, platform, language) per address,
    drawn from the same mix people use, so no fingerprint is the scraper's own."""
    mix = browser_mix()
    weights, tools = [w for w, _ in mix], [t for _, t in mix]
    return _rotating(world, "rotating-fingerprints", lambda: world.rng.choices(tools, weights)[0])


def headless_browser(world: World) -> Actor:
    """Chromium under Playwright: real page loads with assets, runs the challenge's script,
    human-like pauses, all day and night; a new residential address every session of
    ~30 pages; half the fleet hides 'HeadlessChrome' behind a stealth user-agent."""
    pool = network.residential(world.rng, 400)
    pop = world.population
    todo = world.rng.sample(all_users(world), len(pop))
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
    todo = world.rng.sample(all_users(world), len(pop))
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
    todo = world.rng.sample(all_users(world), len(pop))
    gap = DAY / max(len(todo), 1)
    t = world.start
    for i, uid in enumerate(todo):
        t += world.rng.uniform(0.5, 1.5) * gap
        ip = pool[(i * 7919) % len(pool)]
        user = pop.by_id(uid)
        assert user is not None
        yield Req(t, ip, f"/u/{user.username}", CURL_CFFI.page(HOST), CURL_CFFI.ja4, target=uid,
                  session="low-and-slow")
