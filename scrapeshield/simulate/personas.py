"""The persona catalogue: who is in a simulated day, how many, and which side they are on."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from scrapeshield.simulate import fleets, network, people, scrapers
from scrapeshield.simulate.clients import APP_ANDROID, APP_IOS, BINGBOT, GOOGLEBOT, browser_mix
from scrapeshield.simulate.model import DAY, Actor, World
from scrapeshield.simulate.tools import Tool


@dataclass(frozen=True, slots=True)
class Persona:
    name: str
    side: str  # "scraper" or "person"
    build: Callable[[World], list[Actor]]
    about: str


def _browsers(world: World) -> Callable[[], Tool]:
    mix = browser_mix()
    weights = [w for w, _ in mix]
    tools = [t for _, t in mix]
    return lambda: world.rng.choices(tools, weights)[0]


def _profiles(world: World, median: float, cap: int) -> int:
    return max(1, min(cap, round(world.rng.lognormvariate(0, 1.0) * median)))


def _people(world: World) -> list[Actor]:
    pick = _browsers(world)
    n = int(2500 * world.scale)
    ips = network.residential(world.rng, n)
    users = len(world.population)
    out = []
    for i in range(n):
        sign_in = world.rng.randrange(1, users + 1) if world.rng.random() < 0.25 else 0
        out.append(people.browsing(world, pick(), ips[i], f"person-{i}", world.diurnal_start(),
                                   _profiles(world, 5, 40), sign_in))
    return out


def _power_users(world: World) -> list[Actor]:
    pick = _browsers(world)
    n = max(2, int(20 * world.scale))
    ips = network.residential(world.rng, n)
    users = len(world.population)
    out = []
    for i in range(n):
        tool = pick()
        account = world.rng.randrange(1, users + 1)
        for s in range(4):  # four sittings through the day, hundreds of profiles in all
            start = world.start + s * DAY / 4 + world.rng.uniform(0, DAY / 8)
            out.append(people.browsing(world, tool, ips[i], f"power-{i}-{s}", start,
                                       world.rng.randint(40, 110), account, think=8.0))
    return out


def _nat(world: World) -> list[Actor]:
    """An office behind one proxy address (working hours) and a carrier-grade NAT: four
    addresses shared by hundreds of phones all day."""
    pick = _browsers(world)
    office = network.residential(world.rng, 1)[0]
    carrier = network.carrier_nat(world.rng, 4)
    out = []
    for i in range(int(150 * world.scale) + 5):
        start = world.start + 9 * 3600 + world.rng.uniform(0, 8 * 3600)
        out.append(people.browsing(world, pick(), office, f"office-{i}", start, _profiles(world, 5, 40)))
    for i in range(int(600 * world.scale) + 10):
        out.append(people.browsing(world, pick(), carrier[i % 4], f"carrier-{i}", world.diurnal_start(),
                                   _profiles(world, 5, 40)))
    return out


def _app(world: World) -> list[Actor]:
    n = int(800 * world.scale) + 5
    ips = network.residential(world.rng, n // 2) + network.carrier_nat(world.rng, 6)
    users = len(world.population)
    return [
        people.app_session(world, APP_IOS if i % 2 else APP_ANDROID, world.rng.choice(ips), f"app-{i}",
                           world.diurnal_start(), _profiles(world, 6, 60), world.rng.randrange(1, users + 1))
        for i in range(n)
    ]


def _crawlers(world: World) -> list[Actor]:
    """Googlebot and Bingbot: each its day's pages in visits of 5-20 pages, every visit from
    one of its addresses (30 and 10 of them) at any hour, so that "no crawler blocked" is
    a claim about many verified addresses and visits, not about two long sessions."""
    out = []
    engines = ((GOOGLEBOT, network.googlebot, 30, int(1500 * world.scale) + 20),
               (BINGBOT, network.bingbot, 10, int(500 * world.scale) + 10))
    for tool, address, n, pages in engines:
        ips = [address(world.rng) for _ in range(n)]
        visit = 0
        while pages > 0:
            size = min(pages, world.rng.randint(5, 20))
            start = world.start + world.rng.uniform(0, DAY - 600)
            ip = world.rng.choice(ips)
            out.append(people.search_crawler(world, tool, ip, f"{tool.name}-{visit}", start, size,
                                             robots=visit == 0))
            pages -= size
            visit += 1
    return out


def _arrivals(world: World) -> list[Actor]:
    pick = _browsers(world)
    n = int(1500 * world.scale) + 5
    ips = network.residential(world.rng, n)
    return [people.search_arrival(world, pick(), ips[i], f"arrival-{i}", world.diurnal_start(),
                                  _profiles(world, 2, 10)) for i in range(n)]


def _direct(world: World) -> list[Actor]:
    """People who open a profile directly (a link from a messaging or mail app, a bookmark,
    a typed address). A quarter come back later the same day with the same browser (a
    second or third visit, its cookies and cache kept); a phone is then often on another
    address. A fifth are remembered as signed in (a session cookie from an earlier day)."""
    pick = _browsers(world)
    n = int(1200 * world.scale) + 5
    homes = network.residential(world.rng, n)
    users = len(world.population)
    out = []
    for i in range(n):
        tool = pick()
        visits = 1 if world.rng.random() < 0.75 else world.rng.choice((2, 2, 3))
        starts = sorted(world.diurnal_start() for _ in range(visits))
        ips = [homes[i]]
        for _ in range(visits - 1):  # a phone moves between networks; a desktop stays home
            ips.append(network.residential(world.rng, 1)[0] if tool.mobile and world.rng.random() < 0.6
                       else homes[i])
        # Most read just the profile they were sent; some go on through the site.
        reads = [1 if world.rng.random() < 0.55 else 1 + _profiles(world, 2, 15) for _ in range(visits)]
        sid = ""
        if world.rng.random() < 0.2:
            sid = f"{world.rng.randrange(1, users + 1)}.{world.rng.getrandbits(64):016x}"
        out.append(people.direct_arrival(world, tool, ips, f"direct-{i}", starts, reads, sid))
    return out


def _one(fn: Callable[[World], Actor]) -> Callable[[World], list[Actor]]:
    return lambda world: [fn(world)]


PERSONAS: tuple[Persona, ...] = (
    Persona("naive crawler", "scraper", _one(scrapers.naive_crawler),
            "one IP, python-requests, profile ids in order, no pauses"),
    Persona("framework spider", "scraper", _one(scrapers.framework_spider),
            "Scrapy defaults, follows feed and follower links, obeys robots.txt"),
    Persona("browser impersonator", "scraper", _one(scrapers.browser_impersonator),
            "curl_cffi as Chrome 152 (headers and JA4), one IP, steady, no assets"),
    Persona("rotating proxies", "scraper", _one(fleets.rotating_proxies),
            "the impersonator over thousands of residential IPs, 1-5 requests each"),
    Persona("headless browser", "scraper", _one(fleets.headless_browser),
            "Chromium under Playwright, assets, solves challenges, human pace, never sleeps"),
    Persona("account farm", "scraper", _one(fleets.account_farm),
            "40 signed-in accounts on the JSON API, each under its hourly budget"),
    Persona("low and slow", "scraper", _one(fleets.low_and_slow),
            "10,000 residential IPs, one request each every several minutes, all day"),
    Persona("search harvester", "scraper", _one(scrapers.search_harvester),
            "dictionary queries on the search API, then each profile found"),
    Persona("rotating fingerprints", "scraper", _one(fleets.rotating_fingerprints),
            "rotating proxies with a different impersonated browser per address"),
    Persona("fake googlebot", "scraper", _one(scrapers.fake_googlebot),
            "Googlebot's user-agent from hosting addresses"),
    Persona("people browsing", "person", _people,
            "feed, profiles, search, assets, referrers, think times; a quarter signed in"),
    Persona("power users", "person", _power_users,
            "moderators: hundreds of profiles a day in four sittings"),
    Persona("people behind NAT", "person", _nat,
            "an office proxy and a carrier-grade NAT shared by hundreds"),
    Persona("search arrivals", "person", _arrivals,
            "land on a profile from a search engine's results, then read a few more"),
    Persona("direct arrivals", "person", _direct,
            "open a profile with no referer (messaging app link, bookmark, typed); some come back"),
    Persona("mobile app", "person", _app, "the platform's app: JSON API with a bearer token"),
    Persona("search engines", "person", _crawlers,
            "Googlebot and Bingbot: visits of 5-20 pages from 40 addresses of their published ranges"),
)

BY_NAME = {p.name: p for p in PERSONAS}
