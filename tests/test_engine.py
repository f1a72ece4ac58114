"""The pipeline in-process, on a manual clock: containment, people untouched, fail mode."""

from __future__ import annotations

import pytest

from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.lists import ListEntry
from scrapeshield.policy.loader import load_policy, parse_policy
from scrapeshield.signals.base import Detector
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision, RequestContext

CHROME = [
    ("host", "127.0.0.1:8000"),
    ("sec-ch-ua", '"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"'),
    ("sec-ch-ua-mobile", "?0"),
    ("sec-ch-ua-platform", '"Linux"'),
    (
        "user-agent",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/126.0.0.0 Safari/537.36",
    ),
    ("accept", "text/html,*/*;q=0.8"),
    ("sec-fetch-site", "same-origin"),
    ("sec-fetch-mode", "navigate"),
    ("sec-fetch-dest", "document"),
    ("accept-encoding", "gzip, deflate, br, zstd"),
    ("accept-language", "en-GB,en;q=0.9"),
]


def make_engine(policy_text: str | None = None) -> tuple[Engine, ManualClock]:
    clock = ManualClock()
    policy = parse_policy(policy_text) if policy_text else load_policy()
    return Engine(policy, MemoryStore(), clock), clock


def ask(
    engine: Engine, clock: ManualClock, path: str, headers: list[tuple[str, str]], ip: str = "198.51.100.20"
) -> Decision:
    ctx = engine.contexts.build(clock.now(), ip, "GET", path, headers)
    return engine.decide(ctx)


def test_naive_scraper_contained_before_a_few_dozen_profiles() -> None:
    engine, clock = make_engine()
    served = 0
    for user_id in range(1, 500):
        clock.advance(0.05)
        decision = ask(engine, clock, f"/api/v1/users/{user_id}", [("user-agent", "python-httpx/0.28.1")])
        if decision.action is Action.ALLOW:
            served += 1
    assert served <= 36


def test_naive_scraper_with_browser_user_agent_still_contained() -> None:
    engine, clock = make_engine()
    ua = [("user-agent", CHROME[4][1]), ("accept", "*/*"), ("accept-encoding", "gzip")]
    served = 0
    for user_id in range(1, 1000):
        clock.advance(0.05)
        if ask(engine, clock, f"/api/v1/users/{user_id}", ua).action is Action.ALLOW:
            served += 1
    assert served <= 36


def test_person_browsing_is_never_refused() -> None:
    engine, clock = make_engine()
    pages = [
        "/",
        "/static/app.css",
        "/static/app.js",
        "/u/maria.garcia",
        "/static/avatars/4.svg",
        "/",
        "/u/li.wei",
        "/api/v1/search",
        "/u/sam.okoro",
        "/u/maria.garcia",
    ]
    for _ in range(20):  # twenty visits over a day
        for path in pages:
            clock.advance(8)  # think time
            decision = ask(engine, clock, path, CHROME)
            assert decision.action is Action.ALLOW, decision
        clock.advance(3600)


def test_honeypot_blocks_and_is_remembered() -> None:
    engine, clock = make_engine()
    assert ask(engine, clock, "/", CHROME).action is Action.ALLOW
    assert ask(engine, clock, "/u/mira.okafor.archive", CHROME).action is Action.BLOCK
    clock.advance(30)
    assert ask(engine, clock, "/u/anyone", CHROME).action is Action.BLOCK


def test_honeypot_memory_fades_after_an_hour() -> None:
    engine, clock = make_engine()
    assert ask(engine, clock, "/u/mira.okafor.archive", CHROME).action is Action.BLOCK
    clock.advance(3700)
    assert ask(engine, clock, "/", CHROME).action is Action.ALLOW


def test_distinct_records_budget_applies_to_a_browser_too() -> None:
    """A browser that behaves (assets, links from the site) meets the data budget all the same."""
    engine, clock = make_engine()
    actions = []
    from_site = [*CHROME, ("referer", "http://127.0.0.1:8000/")]
    for user_id in range(1, 200):
        clock.advance(0.5 + user_id * 7 % 5)  # an irregular pace, back to the feed now and then
        actions.append(ask(engine, clock, f"/u/user{user_id * 7919 % 10007}", from_site).action)
        ask(engine, clock, f"/static/avatars/{user_id}.svg", from_site)
        if user_id % 4 == 0:
            ask(engine, clock, "/", from_site)
    assert actions[:80] == [Action.ALLOW] * 80
    assert actions[80] is Action.CHALLENGE  # 81st distinct profile in 10 minutes


def test_throttle_carries_retry_after() -> None:
    engine, clock = make_engine()
    decision = None
    for _ in range(70):
        decision = ask(engine, clock, "/", CHROME)
    assert decision is not None and decision.action is Action.THROTTLE
    assert decision.retry_after >= 1 and decision.rule == "limit:ip-burst"


def test_allow_and_block_lists_with_expiry() -> None:
    engine, clock = make_engine()
    engine.lists.add(ListEntry("ip", "198.51.100.20", Action.BLOCK, clock.now() + 60, "test"))
    assert ask(engine, clock, "/", CHROME).action is Action.BLOCK
    clock.advance(61)
    assert ask(engine, clock, "/", CHROME).action is Action.ALLOW
    engine.lists.add(ListEntry("network", "203.0.113.0/24", Action.ALLOW, 0, "partner"))
    decision = ask(engine, clock, "/api/v1/users/1", [("user-agent", "curl/8")], ip="203.0.113.9")
    assert decision.action is Action.ALLOW and decision.rule == "list"


def test_rules_first_terminal_match_wins() -> None:
    engine, clock = make_engine(
        "rules:\n"
        "  - {name: app, match: {header_equals: {x-app-token: secret}}, action: allow}\n"
        "  - {name: tools, match: {ua_class: [http-library]}, action: block}\n"
    )
    assert (
        ask(engine, clock, "/", [("user-agent", "curl/8"), ("x-app-token", "secret")]).action is Action.ALLOW
    )
    decision = ask(engine, clock, "/", [("user-agent", "curl/8")])
    assert decision.action is Action.BLOCK and decision.rule == "rule:tools"
    # A header sent twice: its last value is the one a rule compares.
    twice = [("user-agent", "curl/8"), ("x-app-token", "secret"), ("x-app-token", "other")]
    assert ask(engine, clock, "/", twice).rule == "rule:tools"
    assert ask(engine, clock, "/", [*twice[:1], *twice[2:], twice[1]]).action is Action.ALLOW


class Exploding:
    name = "exploding"

    def __init__(self, policy: object) -> None:
        pass

    def inspect(self, ctx: RequestContext, memory: object, out: list[object]) -> None:
        raise RuntimeError("detector bug")


@pytest.mark.parametrize(("mode", "expected"), [("open", Action.ALLOW), ("closed", Action.BLOCK)])
def test_internal_error_applies_fail_mode(
    mode: str, expected: Action, monkeypatch: pytest.MonkeyPatch
) -> None:
    import scrapeshield.engine as engine_module

    monkeypatch.setattr(engine_module, "DETECTORS", (*engine_module.DETECTORS, Exploding))
    engine, clock = make_engine(f"fail_mode: {mode}\n")
    decision = ask(engine, clock, "/", CHROME)
    assert decision.action is expected and decision.rule == f"fail-{mode}"
    assert engine.errors == 1


def test_every_decision_reaches_listeners_with_reasons() -> None:
    engine, clock = make_engine()
    seen: list[Decision] = []
    engine.listeners.append(lambda ctx, d: seen.append(d))
    ask(engine, clock, "/api/v1/users/1", [("user-agent", "python-httpx/0.28.1")])
    assert seen and seen[0].action is Action.CHALLENGE
    assert any("http-library" in r for r in seen[0].reasons)


def test_detector_protocol_is_satisfied() -> None:
    from scrapeshield.signals.registry import DETECTORS

    policy = load_policy()
    detectors: list[Detector] = [f(policy) for f in DETECTORS]
    assert len({d.name for d in detectors}) == len(detectors)


def test_a_listed_address_is_not_written_into_the_decision_reasons() -> None:
    """Reasons are stored with events, which hold pseudonyms: the raw address stays out."""
    engine, clock = make_engine()
    engine.lists.add(ListEntry("ip", "198.51.100.20", Action.BLOCK, 0, "scraper"))
    decision = ask(engine, clock, "/", CHROME)
    assert decision.action is Action.BLOCK and decision.rule == "list"
    assert decision.reasons[0] == "ip on the block list: scraper"
    assert not any("198.51.100.20" in reason for reason in decision.reasons)


@pytest.mark.parametrize(
    ("path", "forwarded"),
    [("/u/²", "203.0.113.9"), ("/u/٣٤", "203.0.113.9"), ("/api/v1/users/٣", "203.0.113.9"),
     ("/u/alice", "203.0.113.²"), ("/u/alice", "٣.0.113.9")],
)
def test_unicode_digits_get_a_decision_not_the_fail_mode(path: str, forwarded: str) -> None:
    # str.isdigit says yes to '²' and '٣', and int() refuses '²': neither may reach the fail mode.
    engine, clock = make_engine(
        "version: 1\ntrusted_proxies: [127.0.0.1/32]\n"
        "routes:\n  - {name: profile-page, path: '/u/{username}', record: username}\n"
        "  - {name: profile-api, path: '/api/v1/users/{id:int}', record: id}\n")
    for _ in range(3):
        clock.advance(1)
        decision = ask(engine, clock, path, [*CHROME, ("x-forwarded-for", forwarded)], ip="127.0.0.1")
        assert decision.rule not in ("fail-open", "fail-closed")
    assert engine.errors == 0
    ctx = engine.contexts.build(clock.now(), "127.0.0.1", "GET", path, [("x-forwarded-for", forwarded)])
    assert ctx.ip == ("203.0.113.9" if forwarded == "203.0.113.9" else "127.0.0.1")
