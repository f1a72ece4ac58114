"""Every registered detector: the shared contract and its annotated samples."""

from __future__ import annotations

import ipaddress
import random
from pathlib import Path
from typing import Any

import pytest
import yaml

from scrapeshield.context import ContextBuilder
from scrapeshield.policy.loader import load_policy
from scrapeshield.signals.activity import ActivityDetector
from scrapeshield.signals.registry import DETECTORS
from scrapeshield.signals.shared import _public
from scrapeshield.state.base import ClientMemory
from scrapeshield.testing.detectors import check_detector
from scrapeshield.types import Signal

SAMPLES = Path(__file__).parent / "samples"
COMMON: dict[str, Any] = yaml.safe_load((SAMPLES / "common.yaml").read_text())
POLICY = load_policy()


@pytest.mark.parametrize("factory", DETECTORS, ids=lambda f: f.__name__)
def test_detector_contract(factory: Any) -> None:
    check_detector(factory, POLICY)


def _samples(factory: Any) -> list[dict[str, Any]]:
    path = SAMPLES / f"{factory(POLICY).name}.yaml"
    assert path.exists(), f"{factory.__name__} ships no samples ({path.name})"
    samples: list[dict[str, Any]] = yaml.safe_load(path.read_text())
    return samples


@pytest.mark.parametrize("factory", DETECTORS, ids=lambda f: f.__name__)
def test_detector_has_positive_and_negative_samples(factory: Any) -> None:
    samples = _samples(factory)
    assert any(s.get("expect") for s in samples), "no positive sample"
    assert any(s.get("absent") for s in samples), "no negative sample"


CASES = [
    pytest.param(factory, sample, id=f"{factory.__name__}: {sample['name']}")
    for factory in DETECTORS
    for sample in _samples(factory)
]


@pytest.mark.parametrize(("factory", "sample"), CASES)
def test_sample(factory: Any, sample: dict[str, Any]) -> None:
    """Replays a sample from one address; ``then_headers``/``then_paths`` continue from the
    same address with other headers (another client behind the same NAT). ``every`` sets
    the seconds between requests (default 3; a list cycles), ``repeat`` replays the paths
    that many times, and a path's ``?query`` is passed as the query string. ``shared`` is what
the shared (campaign) counters answer for every request (``signals.shared`` layout)."""
    builder = ContextBuilder(POLICY)
    detector = factory(POLICY)
    activity = ActivityDetector(POLICY)
    memory = ClientMemory(0.0)
    found: list[Signal] = []
    steps = [(sample["headers"], sample.get("paths", ["/"]))]
    if "then_paths" in sample:
        steps.append((sample["then_headers"], sample["then_paths"]))
    ts = 100.0
    every = sample.get("every", 3)
    gaps = every if isinstance(every, list) else [every]
    step = 0
    for headers, paths in steps:
        if isinstance(headers, str):
            headers = COMMON[headers]
        for path in paths * sample.get("repeat", 1):
            ts += gaps[step % len(gaps)]
            step += 1
            path, _, query = path.partition("?")
            ctx = builder.build(ts, "192.0.2.44", "GET", path, [tuple(h) for h in headers], "http", query)
            if "tls" in sample or "h2" in sample:  # as a trusted edge would have passed them in
                ctx = ctx._replace(tls_fingerprint=sample.get("tls", ""), h2_fingerprint=sample.get("h2", ""))
            found = []
            memory.shared = tuple(sample.get("shared", ()))  # what the shared counters said
            if factory is not ActivityDetector:  # as in the engine: later detectors read its counts
                activity.inspect(ctx, memory, [])
            detector.inspect(ctx, memory, found)
    names = {s.name for s in found}
    for expected in sample.get("expect", []):
        assert expected in names, f"expected {expected}, got {sorted(names)}"
    for absent in sample.get("absent", []):
        assert absent not in names, f"{absent} fired: {[s.reason for s in found]}"
    assert all(s.reason for s in found)


def test_public_network_check_agrees_with_ipaddress() -> None:
    """campaign.network's integer check of a client's network (no ipaddress object on the
    request path) judges every network as ipaddress's ``is_global`` does, CGNAT included."""
    rng = random.Random(7)
    networks = ["10.1.2.0/24", "100.64.0.0/24", "100.128.0.0/24", "192.0.0.0/24", "192.0.0.0/29",
                "8.8.8.0/24", "255.255.255.255/32", "2001:db8::/48", "2a00:1450::/48", "junk"]
    for _ in range(20_000):
        address = ipaddress.IPv4Address(rng.getrandbits(32))
        networks.append(str(ipaddress.ip_network(f"{address}/{rng.choice([8, 10, 16, 24, 29, 32])}",
                                                 strict=False)))
    for network in networks:
        try:
            expected = ipaddress.ip_network(network, strict=False).is_global
        except ValueError:
            expected = False
        assert _public(network) is expected, network


_UAS = ["Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 "
        "Safari/537.36", "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
        "curl/8.5.0", ""]
_HINTS = [None, '"Chromium";v="126", "Google Chrome";v="126"', '"Chromium";v="120"']
_SHAPES = [("accept", "accept-encoding", "accept-language", "sec-ch-ua", "sec-fetch-mode"),
           ("accept-language", "accept-encoding", "accept"), ("accept",), ()]


def test_header_checks_answer_as_worked_out_afresh() -> None:
    """The header detector remembers its findings per user-agent, header sequence, secure
    origin and client hints (nested, with the names tuple found by identity): whatever it
    saw before, each request gets what its checks find for it, equal names tuples whether
    the same object or not."""
    from scrapeshield.signals.headers import HeaderConsistencyDetector

    rng = random.Random(11)
    remembering = HeaderConsistencyDetector(POLICY)
    shapes = [*_SHAPES, *(tuple(s) for s in _SHAPES)]  # equal tuples, other objects
    for _ in range(3000):
        ua, names, hints = rng.choice(_UAS), rng.choice(shapes), rng.choice(_HINTS)
        scheme, host = rng.choice([("https", "example.org"), ("http", "example.org"),
                                   ("http", "localhost:8000"), ("http", "127.0.0.1"), ("http", "[::1]:80")])
        ctx = ContextBuilder(POLICY).build(1.0, "192.0.2.1", "GET", "/", []).\
            _replace(user_agent=ua, header_names=names, client_hints=hints, scheme=scheme, host=host)
        found: list[Signal] = []
        remembering.inspect(ctx, ClientMemory(0.0), found)
        afresh: list[Signal] = []
        HeaderConsistencyDetector(POLICY).inspect(ctx, ClientMemory(0.0), afresh)
        assert found == afresh


def test_pacing_hours_as_computed_afresh() -> None:
    """The pacing detector keeps the hour of its last request (compiled, ``ts // 3600``
    is dear): at hour boundaries, back in time and far ahead, every request's hour is
    the one ``ts // 3600`` gives."""
    from scrapeshield.signals.pacing import PacingDetector

    kept = PacingDetector(POLICY)
    times = [0.0, 3599.999, 3600.0, 3600.0 - 2**-40, 7199.9999999, 7200.0, 100.0, 1.7e9,
             1.7e9 + 3600.0, 1.7e9 - 1e-6, 2.0**52 + 7200.0, 5.0, 86400.0 * 365 * 2000]
    rng = random.Random(5)
    times += [rng.uniform(0, 4e9) for _ in range(500)]
    times += [3600.0 * rng.randrange(1, 10**6) + rng.choice([-1e-6, 0.0, 1e-6]) for _ in range(500)]
    for ts in times:
        ctx = ContextBuilder(POLICY).build(ts, "192.0.2.1", "GET", "/", [])
        memory = ClientMemory(0.0)
        kept.inspect(ctx, memory, [])
        assert memory.values[15] == float(int(ts // 3600)), ts
