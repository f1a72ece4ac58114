"""Verified good bots: published ranges, forward-confirmed reverse DNS, and what the engine does."""

from __future__ import annotations

import http.server
import ipaddress
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.goodbots.hosting import Hosting
from scrapeshield.goodbots.ranges import RangeSet, load, networks_in, spans_in
from scrapeshield.goodbots.verify import BOTS, GoodBots, Status
from scrapeshield.lists import ListEntry, Lists
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import default_policy_text, load_policy, parse_policy
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision

GOOGLEBOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BINGBOT_UA = "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)"
GOOGLE_IP = "66.249.66.1"  # in the shipped googlebot.json
GOOGLEBOT = next(b for b in BOTS if b.name == "googlebot")
BINGBOT = next(b for b in BOTS if b.name == "bingbot")


class FixedResolver:
    """DNS that serves fixed answers, and counts the questions."""

    def __init__(self, ptr: dict[str, list[str]], a: dict[str, list[str]],
                 gate: threading.Event | None = None) -> None:
        self.ptr, self.a, self.gate = ptr, a, gate
        self.asked = 0

    def reverse(self, ip: str) -> list[str]:
        self.asked += 1
        if self.gate is not None:
            self.gate.wait(10)
        return self.ptr.get(ip, [])

    def forward(self, name: str) -> list[str]:
        self.asked += 1
        return self.a.get(name, [])


GOOD_DNS = {GOOGLE_IP: ["crawl-66-249-66-1.googlebot.com."],
            "157.55.39.7": ["msnbot-157-55-39-7.search.msn.com"]}
GOOD_A = {"crawl-66-249-66-1.googlebot.com": [GOOGLE_IP],
          "msnbot-157-55-39-7.search.msn.com": ["157.55.39.7"]}


def test_loader_reads_every_provider_shape() -> None:
    shapes = [
        {"creationTime": "x",
         "prefixes": [{"ipv4Prefix": "66.249.64.0/27"}, {"ipv6Prefix": "2001:4860::/32"}]},
        {"syncToken": "1", "prefixes": [{"ip_prefix": "3.4.12.4/32", "region": "eu-west-1"}]},
        {"IPv4Prefixes": ["47.82.10.0/23"]},
        ["173.245.48.0/20"],
        {"items": [{"network": "52.82.172.0", "mask_len": 22, "cidr": "52.82.172.0/22",
                    "mask": "255.255.252.0"}]},
        {"agents": {"prefixes_ipv4": ["3.233.144.0/20"]}, "version": 62, "modified": "2026-02-24"},
    ]
    found = {str(n) for shape in shapes for n in networks_in(shape)}
    assert {"66.249.64.0/27", "2001:4860::/32", "3.4.12.4/32", "47.82.10.0/23", "173.245.48.0/20",
            "52.82.172.0/22", "3.233.144.0/20"} <= found
    assert "255.255.252.0/32" not in found, "a netmask is not an address"
    ranges = RangeSet(span for shape in shapes for span in spans_in(shape))
    assert "66.249.64.31" in ranges and "66.249.64.32" not in ranges
    assert "2001:4860:1::5" in ranges and "not an ip" not in ranges


def test_shipped_lists_load() -> None:
    google = load(("googlebot",))
    assert GOOGLE_IP in google and "45.77.1.1" not in google
    hosting = Hosting()
    assert "3.91.1.1" in hosting, "AWS"
    assert "24.1.2.3" not in hosting, "a residential address"


def test_googlebot_verified_only_by_ranges_and_reverse_dns() -> None:
    resolver = FixedResolver(GOOD_DNS, GOOD_A)
    bots = GoodBots(resolver)
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 0.0) is Status.PENDING, "DNS is never awaited"
    bots.wait()
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 1.0) is Status.VERIFIED
    asked = resolver.asked
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 2.0) is Status.VERIFIED and resolver.asked == asked, "cached"
    assert bots.status("45.77.1.1", GOOGLEBOT, 3.0) is Status.SPOOFED, "outside the published ranges"
    assert resolver.asked == asked, "no DNS needed to refuse an address outside the ranges"
    bots.close()


@pytest.mark.parametrize(("ptr", "a"), [
    ({GOOGLE_IP: ["evil.example.com"]}, {"evil.example.com": [GOOGLE_IP]}),  # wrong domain
    ({GOOGLE_IP: ["crawl.googlebot.com.evil.net"]}, {}),  # the suffix trick
    ({GOOGLE_IP: ["crawl-66-249-66-1.googlebot.com"]}, {"crawl-66-249-66-1.googlebot.com": ["1.2.3.4"]}),
    ({}, {}),  # no PTR at all
])
def test_reverse_dns_that_does_not_confirm(ptr: dict[str, list[str]], a: dict[str, list[str]]) -> None:
    bots = GoodBots(FixedResolver(ptr, a))
    bots.status(GOOGLE_IP, GOOGLEBOT, 0.0)
    bots.wait()
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 1.0) is Status.SPOOFED
    bots.close()


def test_crawler_without_shipped_ranges_is_verified_by_dns_alone() -> None:
    bots = GoodBots(FixedResolver(GOOD_DNS, GOOD_A))
    bots.status("157.55.39.7", BINGBOT, 0.0)
    bots.wait()
    assert bots.status("157.55.39.7", BINGBOT, 1.0) is Status.VERIFIED
    bots.close()


def test_a_slow_resolver_never_blocks_a_decision() -> None:
    gate = threading.Event()
    bots = GoodBots(FixedResolver(GOOD_DNS, GOOD_A, gate))
    for i in range(50):
        assert bots.status(GOOGLE_IP, GOOGLEBOT, float(i)) is Status.PENDING
    gate.set()
    bots.wait()
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 60.0) is Status.VERIFIED
    bots.close()


def _engine(resolver: FixedResolver) -> tuple[Engine, ManualClock]:
    clock = ManualClock(1_000_000.0)
    return Engine(load_policy(), MemoryStore(), clock, goodbots=GoodBots(resolver)), clock


def _ask(engine: Engine, clock: ManualClock, ip: str, ua: str, path: str) -> Action:
    headers = [("host", "social.example"), ("user-agent", ua), ("accept", "*/*"),
               ("accept-encoding", "gzip"), ("accept-language", "en")]
    return engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, headers)).action


def test_verified_googlebot_crawls_freely_and_a_spoofed_one_gets_nothing() -> None:
    engine, clock = _engine(FixedResolver(GOOD_DNS, GOOD_A))
    _ask(engine, clock, GOOGLE_IP, GOOGLEBOT_UA, "/robots.txt")
    engine.goodbots.wait()
    served = 0
    for i in range(1, 301):  # beyond the distinct-records budget a scraper would meet
        clock.advance(1)
        served += _ask(engine, clock, GOOGLE_IP, GOOGLEBOT_UA, f"/u/user{i}") is Action.ALLOW
    assert served == 300
    spoofed = [_ask(engine, clock, "45.77.1.9", GOOGLEBOT_UA, f"/u/user{i}") for i in range(1, 30)]
    scraper = [_ask(engine, clock, "45.77.1.10", "python-requests/2.32", f"/u/user{i}") for i in range(1, 30)]
    assert spoofed.count(Action.ALLOW) <= scraper.count(Action.ALLOW)
    assert spoofed[0] is Action.BLOCK, "a spoofed Googlebot is refused from its first request"


# -- refresh ---------------------------------------------------------------------------------


@pytest.fixture()
def published(tmp_path: Path) -> Iterator[str]:
    (tmp_path / "googlebot.json").write_text(json.dumps({"prefixes": [{"ipv4Prefix": "203.0.113.0/24"}]}))
    (tmp_path / "junk.json").write_text("<html>not json</html>")
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: object) -> None:
            super().__init__(*args, directory=str(tmp_path))  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_refresh_downloads_checks_and_takes_precedence(published: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    run = subprocess.run(
        [sys.executable, "-m", "scrapeshield", "goodbots", "refresh", "--data-dir", str(data),
         "--url", f"googlebot={published}/googlebot.json", "--url", f"applebot={published}/junk.json"],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    assert "googlebot: ok (1 networks)" in run.stdout and "applebot: failed" in run.stdout
    assert not (data / "ip-ranges" / "applebot.json").exists(), "a bad answer is not written"
    fresh = GoodBots(ranges_dir=data / "ip-ranges")
    assert fresh.status("203.0.113.9", GOOGLEBOT, 0.0) is Status.VERIFIED
    assert fresh.status(GOOGLE_IP, GOOGLEBOT, 0.0) is Status.SPOOFED, "the refreshed list replaces the old"


def test_inline_verification_for_replays() -> None:
    resolver = FixedResolver(GOOD_DNS, GOOD_A)
    bots = GoodBots(resolver, inline=True)
    assert bots.status("157.55.39.7", BINGBOT, 0.0) is Status.VERIFIED, "answered at once"
    assert bots.status(GOOGLE_IP, GOOGLEBOT, 0.0) is Status.VERIFIED
    assert bots.status("157.55.39.8", BINGBOT, 0.0) is Status.SPOOFED, "no PTR for it"


# -- a verified crawler is judged as a crawler, not as a browser ------------------------------


def _policy_without_the_allow_rule() -> CompiledPolicy:
    """The default policy for a site that gives crawlers a budget instead of free rein."""
    doc = yaml.safe_load(default_policy_text())
    doc["rules"] = [r for r in doc["rules"] if r["name"] != "verified-crawlers"]
    return parse_policy(yaml.safe_dump(doc), "<crawl budget>")


def test_verified_crawler_is_exempt_from_behaviour_and_campaigns_but_keeps_its_budget() -> None:
    policy = _policy_without_the_allow_rule()
    clock = ManualClock(1_000_000.0)
    resolver = FixedResolver(GOOD_DNS, GOOD_A)
    engine = Engine(policy, MemoryStore(), clock, goodbots=GoodBots(resolver, inline=True))

    def crawl(ip: str, ua: str, n: int) -> list[Decision]:
        out = []
        for i in range(1, n + 1):  # bare profile reads at a steady pace, no assets: a crawler
            clock.advance(2.0)
            headers = [("host", "social.example"), ("user-agent", ua), ("accept", "*/*"),
                       ("accept-encoding", "gzip")]
            out.append(engine.decide(engine.contexts.build(clock.now(), ip, "GET", f"/u/user{i}", headers)))
        return out

    verified = crawl(GOOGLE_IP, GOOGLEBOT_UA, 79)
    assert all(d.action is Action.ALLOW for d in verified), {d.action for d in verified}
    reasons = {r.split(" ")[0] for d in verified for r in d.reasons}
    assert reasons <= {"ua.search-engine-unverified", "goodbot.verified"}, reasons
    # Its crawl budget (the policy's per-address distinct-records limit) still applies.
    over = crawl(GOOGLE_IP, GOOGLEBOT_UA, 85)[-1]
    assert over.action is Action.CHALLENGE and over.rule == "limit:ip-profiles-10m"
    # The same traffic from an address Bing does not use: the behaviour counts in full.
    unverified = crawl("157.55.39.8", BINGBOT_UA, 40)
    assert unverified[-1].action is Action.BLOCK
    assert any(r.startswith("behaviour.") for r in unverified[-1].reasons)
    assert any(r.startswith("goodbot.spoofed") for r in unverified[-1].reasons)


def test_a_listed_fingerprint_does_not_reach_the_verified_crawler_whose_fingerprint_it_is() -> None:
    """An analyst blocks the spoofers' campaign by fingerprint; spoofers copied Googlebot's
    headers exactly, so the fingerprint is Google's too: the real crawler still gets through."""
    lists = Lists()
    engine = Engine(load_policy(), MemoryStore(), ManualClock(1_000_000.0), lists=lists,
                    goodbots=GoodBots(FixedResolver(GOOD_DNS, GOOD_A), inline=True))
    headers = [("host", "social.example"), ("user-agent", GOOGLEBOT_UA), ("accept", "*/*")]

    def ask(ip: str) -> Decision:
        return engine.decide(engine.contexts.build(1_000_000.0, ip, "GET", "/u/ana", headers))

    fingerprint = engine.contexts.build(1_000_000.0, "45.77.1.9", "GET", "/u/ana", headers).fingerprint
    lists.add(ListEntry("fingerprint", fingerprint, Action.BLOCK, 0.0, "fake Googlebot campaign"))
    assert ask("45.77.1.9").rule == "list"
    assert ask(GOOGLE_IP).action is Action.ALLOW
    lists.add(ListEntry("ip", GOOGLE_IP, Action.BLOCK, 0.0, "an analyst means this address"))
    assert ask(GOOGLE_IP).rule == "list"


def test_range_lookup_reads_addresses_as_ipaddress_does() -> None:
    """Dotted quads are read without building an address object: same answers, and what
    ipaddress refuses (leading zeros, out-of-range or non-ASCII digits) is in no range."""
    ranges = RangeSet([(4, 0x0A000000, 0x0AFFFFFF), (4, 0xC0000200, 0xC00002FF), (6, 1, 1)])
    for ip in ("10.0.0.0", "10.255.255.255", "11.0.0.0", "9.255.255.255", "192.0.2.7", "0.0.0.0",
               "255.255.255.255", "::ffff:10.1.2.3", "::1"):
        assert (ip in ranges) == (ipaddress.ip_address(ip) in ranges), ip
    for bad in ("010.0.0.1", "10.0.0.256", "10.0.0", "10.0.0.1.2", "１0.0.0.1", "10.0.0.²", " 10.0.0.1", ""):
        assert bad not in ranges, bad
