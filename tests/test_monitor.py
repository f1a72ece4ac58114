"""The console monitor's memory of recent addresses, looked up by pseudonym."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from scrapeshield.console import monitor as monitor_module
from scrapeshield.console.monitor import Monitor
from scrapeshield.context import ContextBuilder
from scrapeshield.events import Pseudonymiser
from scrapeshield.policy.loader import parse_policy
from scrapeshield.types import Action, Decision

KEY = b"k" * 32
ALLOW = Decision(Action.ALLOW, 0.0, (), "score")
BLOCK = Decision(Action.BLOCK, 95.0, ("x",), "score")
BUILD = ContextBuilder(parse_policy(""))


def test_pseudonyms_are_hmac_sha256_of_the_address() -> None:
    for key in (b"k", KEY, b"x" * 64, b"y" * 65):
        pseudonymise = Pseudonymiser(key)
        for value in ("192.0.2.1", "2001:db8::1", "192.0.2.0/24", ""):
            expected = "p:" + hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:24]
            assert pseudonymise(value) == expected


def test_addresses_seen_are_found_by_pseudonym_later_ones_too() -> None:
    pseudonymise = Pseudonymiser(KEY)
    monitor = Monitor(pseudonymise)
    monitor(BUILD.build(1.0, "198.51.100.7", "GET", "/", []), ALLOW)
    assert monitor.address_of(pseudonymise("198.51.100.7")) == "198.51.100.7"
    assert monitor.address_of(pseudonymise("198.51.100.0/24")) == "198.51.100.0/24"
    assert monitor.address_of(pseudonymise("203.0.113.9")) is None
    monitor(BUILD.build(2.0, "203.0.113.9", "GET", "/", []), BLOCK)  # after a first look-up
    assert monitor.address_of(pseudonymise("203.0.113.9")) == "203.0.113.9"


def test_address_memory_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitor_module, "MAX_ADDRESSES", 10)
    pseudonymise = Pseudonymiser(KEY)
    monitor = Monitor(pseudonymise)
    for i in range(20):  # allowed: remembered until the memory is full, then not
        monitor(BUILD.build(1.0, f"198.51.{i}.1", "GET", "/", []), ALLOW)
    assert monitor.address_of(pseudonymise("198.51.0.1")) == "198.51.0.1"
    assert monitor.address_of(pseudonymise("198.51.19.1")) is None
    monitor(BUILD.build(2.0, "203.0.113.9", "GET", "/", []), BLOCK)  # a refusal makes room
    assert monitor.address_of(pseudonymise("203.0.113.9")) == "203.0.113.9"
    assert monitor.address_of(pseudonymise("198.51.0.1")) is None


def test_actions_are_counted_in_their_own_bucket_whatever_the_order() -> None:
    """The last request's bucket is kept at hand; a request of another bucket (later, or
    earlier: threads and replays interleave) still counts in its own, and old buckets go."""
    monitor = Monitor(Pseudonymiser(KEY))
    times = [1000.0, 1001.0, 1012.0, 1003.0, 1015.0, 1015.5, 1009.9, 1020.0]
    for n, ts in enumerate(times):
        monitor(BUILD.build(ts, f"198.51.100.{n}", "GET", "/", []), BLOCK if n % 2 else ALLOW)
    series = monitor.series(1020.0, span=30)
    assert series["times"] == [1000, 1010, 1020]
    assert series["actions"]["allow"] == [2, 2, 0] and series["actions"]["block"] == [2, 1, 1]
    assert monitor.requests_since(1010) == {"allow": 2, "block": 2}
    far = 1000.0 + monitor_module.KEEP * monitor_module.STEP
    monitor(BUILD.build(far, "198.51.100.99", "GET", "/", []), ALLOW)
    monitor(BUILD.build(1001.0, "198.51.100.98", "GET", "/", []), BLOCK)  # a very late one
    # 1000's bucket went (the late one starts it again), 1010's and 1020's stay
    assert monitor.requests_since(0) == {"allow": 3, "block": 3}
