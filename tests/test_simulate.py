"""The simulator: deterministic for a seed, every persona present, ground truth honest
(no protection gives scrapers everything they ask for), the engine contains the naive
crawler, and the command line prints the table and JSON."""

from __future__ import annotations

import json

from click.testing import CliRunner

from scrapeshield.cli import main
from scrapeshield.demo.population import Population
from scrapeshield.simulate.clients import CURL_CFFI, SCRAPY, browser_mix
from scrapeshield.simulate.personas import BY_NAME, PERSONAS
from scrapeshield.simulate.policies import policy_for
from scrapeshield.simulate.replay import simulate

SOME = tuple(BY_NAME[n] for n in ("naive crawler", "rotating proxies", "people browsing", "mobile app"))


def test_same_seed_same_day_and_another_seed_another() -> None:
    a = simulate(policy_for("default"), users=400, seed=11, personas=SOME).as_dict()
    b = simulate(policy_for("default"), users=400, seed=11, personas=SOME).as_dict()
    c = simulate(policy_for("default"), users=400, seed=12, personas=SOME).as_dict()
    assert a == b
    assert a["personas"] != c["personas"]


def test_without_protection_scrapers_get_every_profile_they_ask_for() -> None:
    population = Population.generate(500, 2)
    result = simulate(None, users=500, seed=2, level="none", population=population,
                      personas=tuple(p for p in PERSONAS if p.side == "scraper"))
    for name in ("naive crawler", "browser impersonator", "rotating proxies", "low and slow",
                 "account farm", "rotating fingerprints"):
        tally = result.tally(name)
        assert len(tally.profiles) == 500, name  # ground truth: each of the 500 real users once
        assert tally.actions == {"allow": tally.requests}
    naive = result.tally("naive crawler")
    assert naive.requests > 500  # it walked past the last id; those 404s are not profiles


def test_default_policy_contains_the_naive_crawler_and_leaves_people_alone() -> None:
    result = simulate(policy_for("default"), users=1000, seed=5,
                      personas=tuple(BY_NAME[n] for n in ("naive crawler", "people browsing")))
    assert len(result.tally("naive crawler").profiles) <= 50
    people = result.tally("people browsing")
    assert len(people.sessions) >= 100 and not people.blocked


def test_ip_limits_alone_stop_only_the_fast_single_ip_scraper() -> None:
    personas = tuple(BY_NAME[n] for n in ("naive crawler", "low and slow"))
    result = simulate(policy_for("ip-limits"), users=1000, seed=5, personas=personas)
    assert len(result.tally("low and slow").profiles) == 1000  # one request per IP: never limited
    assert len(result.tally("naive crawler").profiles) < 1000


def test_tools_send_their_real_headers() -> None:
    assert dict(SCRAPY.page("h"))["user-agent"].startswith("Scrapy/")  # orders: test_simulate_tools
    cffi = dict(CURL_CFFI.page("h"))
    assert cffi["sec-fetch-site"] == "none" and "connection" not in cffi
    chrome = next(t for _, t in browser_mix() if t.kind == "chrome")
    nav = chrome.page("h", referer="https://h/", cookie="sid=1.x")
    names = [n for n, _ in nav]
    assert names.index("sec-ch-ua") < names.index("user-agent") < names.index("sec-fetch-site")
    assert chrome.ja4 == CURL_CFFI.ja4  # curl_cffi reproduces Chrome's TLS hello
    assert abs(sum(w for w, _ in browser_mix()) - 1.0) < 1e-9


def test_cli_prints_the_table_and_json() -> None:
    runner = CliRunner()
    out = runner.invoke(main, ["simulate", "--users", "300", "--persona", "naive crawler"])
    assert out.exit_code == 0, out.output
    assert "naive crawler" in out.output and "real profiles" in out.output
    out = runner.invoke(main, ["simulate", "--users", "300", "--json", "--persona", "naive crawler",
                               "--protection", "none"])
    data = json.loads(out.output)
    assert data["personas"][0]["real_profiles"] == 300 and data["level"] == "none"
    bad = runner.invoke(main, ["simulate", "--persona", "nobody"])
    assert bad.exit_code == 2 and "unknown persona" in bad.output


def test_an_analyst_challenges_a_browser_fingerprint_campaign_rather_than_blocking_it() -> None:
    personas = tuple(BY_NAME[n] for n in ("rotating proxies", "fake googlebot", "people browsing"))
    result = simulate(policy_for("default"), users=1000, seed=4, personas=personas, analyst_every=3600)
    actions = {a["campaign"]: a["action"] for a in result.acted}
    assert "challenge" in actions.values()  # the impersonated Chrome build: people share it
    assert "block" in actions.values()  # the fake crawler's fingerprint: nobody else has it
    assert not result.tally("people browsing").blocked


def test_search_engines_are_verified_as_in_production_and_never_blocked() -> None:
    """The simulated crawlers come from addresses their operators use, with the reverse DNS
    their operators publish; a spoofed Googlebot from hosting addresses gets nothing."""
    import random

    from scrapeshield.goodbots.verify import BOTS, GoodBots, Status
    from scrapeshield.simulate import network
    from scrapeshield.simulate.dns import CrawlerDNS

    rng = random.Random(4)
    bots = GoodBots(CrawlerDNS(), inline=True)
    google, bing = (next(b for b in BOTS if b.name == n) for n in ("googlebot", "bingbot"))
    for _ in range(50):
        assert bots.status(network.googlebot(rng), google, 0.0) is Status.VERIFIED
        assert bots.status(network.bingbot(rng), bing, 0.0) is Status.VERIFIED
    assert bots.status(network.datacenter(rng, 1)[0], google, 0.0) is Status.SPOOFED
    assert bots.status(network.residential(rng, 1)[0], bing, 0.0) is Status.SPOOFED, "no PTR"
    personas = tuple(BY_NAME[n] for n in ("search engines", "fake googlebot", "people browsing"))
    result = simulate(policy_for("default"), users=1000, seed=6, personas=personas)
    crawlers = result.tally("search engines")
    assert crawlers.requests > 200 and not crawlers.blocked and not crawlers.challenged
    assert len(crawlers.sessions) >= 10  # many visits from many verified addresses, not two sessions
    assert crawlers.actions == {"allow": crawlers.requests}
    assert not result.tally("fake googlebot").profiles


def test_search_arrivals_land_on_a_profile_from_a_search_engine() -> None:
    """People of the default day: their first request is a profile with the search engine
    as referer, then the site's own assets and pages."""
    import random

    from scrapeshield.simulate.model import Outcome, World
    from scrapeshield.types import Action

    population = Population.generate(300, 3)
    world = World(population, random.Random(1), 0.0, scale=0.03)
    actors = BY_NAME["search arrivals"].build(world)
    assert len(actors) >= 10
    first = next(actors[0])
    headers = dict(first.headers)
    assert first.path.startswith("/u/") and first.target
    assert headers["referer"] == "https://www.google.com/" and headers.get("sec-fetch-site") == "cross-site"
    second = actors[0].send(Outcome(Action.ALLOW, 0.0, True))
    assert second.path.startswith(("/static/", "/favicon")), second.path
    result = simulate(policy_for("default"), users=300, seed=3, personas=(BY_NAME["search arrivals"],))
    arrivals = result.tally("search arrivals")
    assert arrivals.sessions and not arrivals.blocked and not arrivals.challenged  # no scraper to share with


def test_direct_arrivals_open_a_profile_with_no_referer_and_run_a_held_page() -> None:
    """People of the default day who open a profile directly: no Referer, Sec-Fetch-Site
    none; some come back later with their browser's cookies. A held page (actions/hold.py)
    gets its stylesheet and script, then the page again with the pass its script earned."""
    import random

    from scrapeshield.simulate.model import Outcome, World
    from scrapeshield.types import Action

    population = Population.generate(300, 3)
    world = World(population, random.Random(1), 0.0, scale=0.03,
                  solve=lambda ip, ua, path: "pass-for-" + ip)
    actors = BY_NAME["direct arrivals"].build(world)
    assert len(actors) >= 30
    first = next(actors[0])
    headers = dict(first.headers)
    assert first.path.startswith("/u/") and first.target
    assert "referer" not in headers and headers.get("sec-fetch-site", "none") == "none"
    assert "cookie" not in headers or "__scrapeshield_pass" not in headers["cookie"]
    sent = [actors[0].send(Outcome(Action.DEGRADE, 0.0, False, held=True))]
    while sent[-1].path != first.path:
        sent.append(actors[0].send(Outcome(Action.ALLOW)))
    assets = [r.path for r in sent[:-1]]
    assert assets and all(p.startswith(("/static/app", "/favicon")) for p in assets), assets
    again = dict(sent[-1].headers)
    assert f"__scrapeshield_pass=pass-for-{first.ip}" in again["cookie"]
    assert again["referer"].endswith(first.path)  # the page reloads itself
    nxt = actors[0].send(Outcome(Action.ALLOW, 0.0, True))
    assert nxt.path.startswith("/static/avatars/") or nxt.ts > sent[-1].ts  # the photo, or the next page
    result = simulate(policy_for("default"), users=300, seed=3, personas=(BY_NAME["direct arrivals"],))
    direct = result.tally("direct arrivals")
    visits = {s.rsplit("-", 1)[0] for s in direct.sessions}
    assert len(direct.sessions) > len(visits)  # some browsers come back the same day
    assert direct.sessions and not direct.blocked and not direct.challenged  # no scraper to share with
