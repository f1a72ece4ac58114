"""The scrapers of the threat model that work from one place each (the distributed ones
are in ``fleets``), each as the real tool behaves.

A scraper wants every profile. It reacts to refusals the way its tool does: the naive
crawler ignores them, Scrapy retries a 429 twice and drops a 403, the impersonator waits
out a throttle, the harvester moves to its next address.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Iterator

from scrapeshield.simulate import network
from scrapeshield.simulate.clients import CURL_CFFI, HTTPX, REQUESTS, SCRAPY
from scrapeshield.simulate.model import HOST, Actor, Outcome, Req, World
from scrapeshield.types import Action

JSON = "application/json"


def all_users(world: World, share: float = 1.0) -> list[int]:
    """A scraper's target list: every user id (or the first ``share`` of them)."""
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
    for uid in world.rng.sample(all_users(world), len(pop)):
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
    from scrapeshield.simulate.clients import GOOGLEBOT

    ips: Iterator[str] = itertools.cycle(network.datacenter(world.rng, 5))
    ip = next(ips)
    t = world.start + world.rng.uniform(0, 7200)
    pop = world.population
    for uid in world.rng.sample(all_users(world), len(pop)):
        user = pop.by_id(uid)
        assert user is not None
        t += world.rng.uniform(0.2, 0.6)
        outcome = yield Req(t, ip, f"/u/{user.username}", GOOGLEBOT.page(HOST), GOOGLEBOT.ja4.replace(
            "t13d1515h2", "t13d1812h1"), target=uid, session="fake-googlebot")
        if outcome.action is not Action.ALLOW:
            ip = next(ips)
