"""What a valid challenge pass answers, and what it does not (decide.honour_pass).

A pass proves that a real browser engine solved the puzzle, from this network with this
user-agent; it does not prove a person. It sets aside a declared automation user-agent and,
below the block threshold, header and TLS oddities; behaviour, campaigns, traps and data
budgets still decide.
"""

from __future__ import annotations

from scrapeshield.actions.challenge import ChallengeService, ChallengeSettings
from scrapeshield.clock import ManualClock
from scrapeshield.context import PASS_COOKIE
from scrapeshield.decide import UNANSWERED_RETRY, decide, honour_pass, wants_pass
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import load_policy
from scrapeshield.simulate import solver
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision, LimitBreach, Signal

POLICY = load_policy()  # challenge 50, block 90, decoy from 40
HEADLESS_UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
               "HeadlessChrome/156.0.0.0 Safari/537.36")
IP = "198.51.100.23"


def _sig(name: str, weight: float) -> Signal:
    return Signal(name, weight, "test")


def _held(signals: list[Signal], record: bool = True,
          breaches: list[LimitBreach] | None = None) -> tuple[Decision, Decision]:
    """(the decision without a pass, the decision with a valid one)."""
    points = sum(s.weight for s in signals)
    points = max(0.0, min(100.0, points))
    reasons = tuple(s.name for s in signals)
    before = decide(POLICY, IP, points, reasons, list(breaches or []), None, None, record)
    return before, honour_pass(POLICY, before, signals, list(breaches or []), record)


def test_a_declared_headless_browser_that_solved_the_challenge_reads_like_a_browser() -> None:
    before, after = _held([_sig("ua.browser-automation", 60)])
    assert before.action is Action.CHALLENGE
    assert (after.action, after.rule) == (Action.ALLOW, "pass")


def test_header_oddities_below_the_block_threshold_are_answered() -> None:
    """A real browser with a privacy extension, challenged for its headers, then let in."""
    odd = [_sig("headers.missing-browser-headers", 35), _sig("headers.no-accept-language", 15)]
    before, after = _held(odd)
    assert before.action is Action.CHALLENGE and after.action is Action.ALLOW


def test_behaviour_is_not_answered_by_a_pass() -> None:
    """A browser fleet: breadth across its addresses and per address; the puzzle says nothing
    about that, so a record route gets decoys and another route a throttle (not a loop of
    puzzles)."""
    fleet = [_sig("campaign.fingerprint-breadth", 45), _sig("behaviour.breadth", 30)]
    before, after = _held(fleet)
    assert before.action is Action.CHALLENGE
    assert (after.action, after.rule) == (Action.DECOY, "score+pass")
    _, elsewhere = _held(fleet, record=False)
    assert elsewhere.action is Action.THROTTLE and elsewhere.retry_after == UNANSWERED_RETRY
    # In the decoy band on its own, with or without a pass.
    before, after = _held([_sig("ua.browser-automation", 60), _sig("campaign.fingerprint-breadth", 45)])
    assert before.action is Action.BLOCK and wants_pass(before)
    assert after.action is Action.DECOY, "the automation user-agent is answered, the fleet is not"


def test_a_pass_never_lifts_a_trap_or_a_request_unlike_its_browser() -> None:
    _, trapped = _held([_sig("ua.browser-automation", 60), _sig("honeypot.hit", 100)])
    assert trapped.action is Action.BLOCK
    # A pass cookie copied into a script that sends the browser's user-agent and little else.
    copied = [_sig("headers.missing-browser-headers", 35), _sig("headers.client-hints-mismatch", 30),
              _sig("tls.mismatch", 45)]
    before, after = _held(copied)
    assert before.action is Action.BLOCK and after.action is Action.BLOCK


def test_data_budgets_still_apply_to_pass_holders() -> None:
    budget = LimitBreach("ip-profiles-10m", Action.CHALLENGE, 60.0, "81 distinct records")
    before, after = _held([], breaches=[budget])
    assert before.action is Action.CHALLENGE and before.rule == "limit:ip-profiles-10m"
    assert (after.action, after.rule, after.retry_after) == (Action.THROTTLE, "limit:ip-profiles-10m", 60.0)
    # The score calls for the challenge too (so the score "decided" it): the budget still counts.
    _, both = _held([_sig("ua.browser-automation", 60)], breaches=[budget])
    assert both.action is Action.THROTTLE
    day = LimitBreach("client-profiles-day", Action.BLOCK, 8640.0, "601 distinct records")
    before, after = _held([_sig("ua.browser-automation", 60)], breaches=[day])
    assert not wants_pass(before) and after is before, "a budget's block is never lifted"


def test_a_policy_rule_challenge_is_answered() -> None:
    rule_challenge = Decision(Action.CHALLENGE, 0.0, ("policy rule 'x'",), "rule:x", 0.0, IP)
    assert honour_pass(POLICY, rule_challenge, [], [], True).action is Action.ALLOW
    listed = Decision(Action.BLOCK, 0.0, ("ip on the block list",), "list", 0.0, IP)
    assert not wants_pass(listed) and honour_pass(POLICY, listed, [], [], True) is listed


# -- through the engine ------------------------------------------------------------------------


def _headers(path_from: str = "") -> list[tuple[str, str]]:
    """Headless Chromium's navigation headers (what Playwright's Chromium sends)."""
    h = [("host", "social.example"),
         ("sec-ch-ua", '"Not:A-Brand";v="8", "Chromium";v="156"'), ("sec-ch-ua-mobile", "?0"),
         ("sec-ch-ua-platform", '"Linux"'), ("upgrade-insecure-requests", "1"),
         ("user-agent", HEADLESS_UA),
         ("accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
         ("sec-fetch-site", "same-origin" if path_from else "none"), ("sec-fetch-mode", "navigate"),
         ("sec-fetch-user", "?1"), ("sec-fetch-dest", "document")]
    if path_from:
        h.append(("referer", f"https://social.example{path_from}"))
    return [*h, ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", "en-US,en;q=0.9")]


def test_engine_headless_browser_browses_on_its_pass_but_gets_decoys_when_it_enumerates() -> None:
    clock = ManualClock(1_767_225_600.0)
    service = ChallengeService(b"s" * 32, clock, ChallengeSettings(difficulty_bits=4))
    engine = Engine(POLICY, MemoryStore(), clock, service)

    def ask(path: str, cookie: str = "", came_from: str = "/") -> Decision:
        clock.advance(7.0)
        headers = _headers(came_from)
        if cookie:
            headers.append(("cookie", f"{PASS_COOKIE}={cookie}"))
        return engine.decide(engine.contexts.build(clock.now(), IP, "GET", path, headers))

    assert ask("/u/ana.silva", came_from="").action is Action.CHALLENGE
    cookie = solver.solve(service, IP, HEADLESS_UA, "/u/ana.silva")
    assert cookie
    # A few pages, as a person's headless browser (a link preview, a test) reads them.
    for path in ("/u/ana.silva", "/", "/u/bo.chen", "/u/carla.diaz"):
        decision = ask(path, cookie)
        assert decision.action is Action.ALLOW, decision
    # Then it walks the JSON API's ids in order: that is not what the puzzle answered.
    walked = [ask(f"/api/v1/users/{uid}", cookie).action for uid in range(100, 112)]
    assert walked[0] is Action.ALLOW
    assert walked[-1] is Action.DECOY, walked
    assert Action.ALLOW not in walked[walked.index(Action.DECOY):], "once it shows, it stays shown"
    # Without its pass the same walk is refused outright; with it, it never gets a real record.
    assert ask("/api/v1/users/112").action is Action.BLOCK


def test_engine_declared_headless_browser_reads_a_few_records_on_its_pass_not_dozens() -> None:
    """Browsing like a person (from the site's pages, assets loaded, human pauses), the
    clients of a declared headless build on their passes read what previews or tests read;
    past that, records are decoys, for every address of that build. A real browser doing
    the same is not touched."""
    from scrapeshield.signals.user_agent import AUTOMATION_RECORDS

    chrome_ua = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                 "Chrome/156.0.0.0 Safari/537.36")
    for ua in (HEADLESS_UA, chrome_ua):
        clock = ManualClock(1_767_225_600.0)
        service = ChallengeService(b"s" * 32, clock, ChallengeSettings(difficulty_bits=4))
        engine = Engine(POLICY, MemoryStore(), clock, service)
        answers = []
        for ip in ("198.51.100.23", "203.0.113.40"):  # two sessions of the build, 15 profiles each
            cookie = ""
            for n in range(16):
                clock.advance(9.0 + n % 4)
                path = f"/u/person{len(answers) * 37 + n}"
                headers = [(k, ua if k == "user-agent" else v) for k, v in _headers("/" if n else "")]
                if cookie:
                    headers.append(("cookie", f"{PASS_COOKIE}={cookie}"))
                decision = engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, headers))
                if decision.action is Action.CHALLENGE and not cookie:
                    cookie = solver.solve(service, ip, ua, path) or ""
                    continue
                answers.append(decision.action)
                avatar = f"/static/avatars/{n}.svg"
                engine.decide(engine.contexts.build(clock.now(), ip, "GET", avatar, headers))
        if ua == HEADLESS_UA:
            assert len(answers) == 30, "each session was challenged once and solved it"
            # Each session's first read was the challenged one (counted for the build too).
            real = answers.index(Action.DECOY)
            assert AUTOMATION_RECORDS - 3 <= real <= AUTOMATION_RECORDS, answers
            assert answers[:real] == [Action.ALLOW] * real and set(answers[real:]) == {Action.DECOY}, answers
        else:
            assert set(answers) == {Action.ALLOW} and len(answers) == 32, answers
