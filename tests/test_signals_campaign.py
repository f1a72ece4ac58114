"""Campaign and account signals through the real engine, on the memory store and on real Redis.

The shared counters ride in the decision's one state call, so both backends must catch a
scraper spread over thousands of addresses the same way, and spare people who share its
fingerprint (they load assets and come from the site's own pages).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator

import pytest
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import load_policy
from scrapeshield.state.base import StateStore
from scrapeshield.state.memory import MemoryStore
from scrapeshield.state.redis import RedisStore
from scrapeshield.types import Action

CHROME_131 = [
    ("host", "social.example"), ("connection", "keep-alive"),
    ("sec-ch-ua", '"Google Chrome";v="131", "Chromium";v="131", "Not_A Brand";v="24"'),
    ("sec-ch-ua-mobile", "?0"), ("sec-ch-ua-platform", '"Windows"'), ("upgrade-insecure-requests", "1"),
    ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
                   "Chrome/131.0.0.0 Safari/537.36"),
    ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
    ("sec-fetch-dest", "document"), ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "en-US,en;q=0.9"),
]
_prefixes = itertools.count()


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    if request.param == "memory":
        yield MemoryStore
        return
    server: RedisServer = request.getfixturevalue("redis_server")
    made: list[RedisStore] = []

    def fresh() -> StateStore:
        made.append(RedisStore(server.url, prefix=f"camp{next(_prefixes)}", timeout=5))
        return made[-1]

    yield fresh
    for one in made:
        one.close()


def _residential(n: int) -> list[str]:
    return [f"{24 + i % 50}.{i // 50 % 250 + 1}.{i * 7 % 256}.{i % 200 + 2}" for i in range(n)]


def test_rotating_proxies_caught_as_a_whole(store: Callable[[], StateStore]) -> None:
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    addresses = _residential(3000)
    served = 0
    reasons: set[str] = set()
    for i in range(600):  # two to three requests per address, a second apart
        clock.advance(1.0)
        ctx = engine.contexts.build(clock.now(), addresses[i // 2], "GET", f"/u/user{i * 13 % 9973}",
                                    CHROME_131)
        decision = engine.decide(ctx)
        served += decision.action is Action.ALLOW
        reasons.update(r.split(" ")[0] for r in decision.reasons)
    assert served <= 60, served
    assert "campaign.fingerprint" in reasons


def test_people_with_the_same_fingerprint_are_spared(store: Callable[[], StateStore]) -> None:
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    scraper, people = _residential(400), _residential(1200)[600:]
    refused_people = 0
    for i in range(400):
        clock.advance(1.0)
        engine.decide(engine.contexts.build(clock.now(), scraper[i], "GET", f"/u/user{i}", CHROME_131))
        person = people[i]  # lands on the feed, loads its assets, clicks a profile
        site = [*CHROME_131, ("referer", "https://social.example/")]
        for path in ("/", "/static/app.css", f"/static/avatars/{i}.svg"):
            engine.decide(engine.contexts.build(clock.now(), person, "GET", path, CHROME_131))
        decision = engine.decide(engine.contexts.build(clock.now(), person, "GET", f"/u/friend{i}", site))
        refused_people += decision.action is not Action.ALLOW
    assert refused_people == 0


SEARCH_ENGINE = "https://www.google.com/"


def _arriving(referer: str) -> list[tuple[str, str]]:
    """CHROME_131 following another site's link: a cross-site navigation with its referer."""
    return [(k, "cross-site" if k == "sec-fetch-site" else v) for k, v in CHROME_131] + [("referer", referer)]


def test_people_arriving_from_a_search_engine_are_spared(store: Callable[[], StateStore]) -> None:
    """A fleet without referers makes its fingerprint a campaign; a person with that same
    fingerprint who lands on a profile from a search engine's results is not part of it (the
    fleet's next address, arriving as the fleet does, still is)."""
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    fleet, people = _residential(1200)[:600], _residential(1200)[600:]
    refused_people = fleet_served = 0
    reasons: set[str] = set()
    for i in range(600):
        clock.advance(1.0)
        fleet_ctx = engine.contexts.build(clock.now(), fleet[i], "GET", f"/u/user{i * 13 % 9973}", CHROME_131)
        decision = engine.decide(fleet_ctx)
        fleet_served += decision.action is Action.ALLOW
        reasons.update(r.split(" ")[0] for r in decision.reasons)
        if i % 3 == 0:  # a person lands from a search engine, then the page loads its assets
            person = people[i]
            ctx = engine.contexts.build(clock.now(), person, "GET", f"/u/friend{i}", _arriving(SEARCH_ENGINE))
            refused_people += engine.decide(ctx).action is not Action.ALLOW
            for path in ("/static/app.css", "/static/app.js", f"/static/avatars/{i}.svg"):
                engine.decide(engine.contexts.build(clock.now(), person, "GET", path, CHROME_131))
    assert refused_people == 0
    assert fleet_served <= 60, fleet_served
    assert "campaign.fingerprint" in reasons


def test_a_fleet_forging_a_search_engine_referer_is_still_caught(store: Callable[[], StateStore]) -> None:
    """Arriving from elsewhere is judged by the reads that arrived the same way: a fleet
    that sends a search engine's referer on every read makes that count hot itself."""
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    addresses = _residential(3000)
    served = 0
    reasons: set[str] = set()
    for i in range(600):
        clock.advance(1.0)
        ctx = engine.contexts.build(clock.now(), addresses[i // 2], "GET", f"/u/user{i * 13 % 9973}",
                                    _arriving(SEARCH_ENGINE))
        decision = engine.decide(ctx)
        served += decision.action is Action.ALLOW
        reasons.update(r.split(" ")[0] for r in decision.reasons)
    assert served <= 60, served
    assert "campaign.fingerprint" in reasons


def _reader(engine: Engine, clock: ManualClock, ip: str, profiles: range, every: float) -> set[str]:
    """One address on the fingerprint, from the site's own pages: the feed (and its assets)
    every fifth profile, each profile with its avatar. Returns the signal names it met."""
    site = [*CHROME_131, ("referer", "https://social.example/")]
    met: set[str] = set()
    for n, i in enumerate(profiles):
        clock.advance(every)
        if n % 5 == 0:
            for path in ("/", "/static/app.css"):
                engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, CHROME_131))
        decision = engine.decide(engine.contexts.build(clock.now(), ip, "GET", f"/u/user{i}", site))
        met.update(r.split(" ")[0] for r in decision.reasons)
        engine.decide(engine.contexts.build(clock.now(), ip, "GET", f"/static/avatars/{i}.svg", site))
    return met


def test_a_browser_fleet_is_caught_by_breadth_but_not_a_heavy_reader(
        store: Callable[[], StateStore]) -> None:
    """Fingerprint breadth is about a fleet: eight addresses reading thirty profiles each are
    one; four people reading five each and a moderator reading a hundred are not (the
    fingerprint's breadth is the moderator's own, which its own budgets judge)."""
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    fleet = [_reader(engine, clock, ip, range(k * 30, k * 30 + 30), 4.0)
             for k, ip in enumerate(_residential(8))]
    assert "campaign.fingerprint-breadth" not in fleet[0]
    assert all("campaign.fingerprint-breadth" in met for met in fleet[5:])
    clock.advance(7200.0)  # past the breadth window: a quiet hour on this build
    for k, ip in enumerate(_residential(20)[10:14]):
        assert not _reader(engine, clock, ip, range(5000 + k * 5, 5005 + k * 5), 20.0)
    moderator = _reader(engine, clock, _residential(20)[15], range(6000, 6100), 30.0)
    assert "campaign.fingerprint-breadth" not in moderator, moderator


def test_one_account_from_many_networks(store: Callable[[], StateStore]) -> None:
    clock = ManualClock(1_767_225_600.0)
    engine = Engine(load_policy(), store(), clock)
    headers = [("host", "social.example"), ("user-agent", "SocialApp/5.2 (Android 14)"),
               ("accept-language", "en"), ("cookie", "sid=42.abcdef")]
    found: list[str] = []
    for i in range(8):
        clock.advance(30)
        ctx = engine.contexts.build(clock.now(), f"81.{i + 1}.7.9", "GET", f"/api/v1/users/{i * 97 + 5}",
                                    headers)
        found = [r.split(" ")[0] for r in engine.decide(ctx).reasons]
    assert "accounts.many-networks" in found
