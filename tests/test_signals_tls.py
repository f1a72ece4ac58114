"""TLS and HTTP/2 fingerprints: believed only from a trusted edge, checked against the claim."""

from __future__ import annotations

import yaml

from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import default_policy_text, parse_policy
from scrapeshield.state.memory import MemoryStore

CHROME = [("host", "social.example"), ("user-agent", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) "
           "AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"),
          ("accept-language", "en-US,en;q=0.9")]
PYTHON_JA4 = "t13d1812h1_85036bcba153_b26ce05bbdd6"
CHROME_JA4 = "t13d1516h2_8daaf6152771_02713d6af862"


def _engine() -> Engine:
    data = yaml.safe_load(default_policy_text())
    data["trusted_proxies"] = ["10.0.0.0/8"]
    return Engine(parse_policy(yaml.safe_dump(data)), MemoryStore(), ManualClock(1000.0))


def _reasons(engine: Engine, peer: str, extra: list[tuple[str, str]]) -> list[str]:
    headers = [*CHROME, ("x-forwarded-for", "198.51.100.9"), *extra]
    ctx = engine.contexts.build(1000.0, peer, "GET", "/", headers, "https")
    return [r.split(" ")[0] for r in engine.decide(ctx).reasons]


def test_fingerprints_from_a_trusted_edge_are_checked() -> None:
    engine = _engine()
    ctx = engine.contexts.build(1000.0, "10.0.0.1", "GET", "/", [
        *CHROME, ("x-ja4", PYTHON_JA4), ("x-h2-fingerprint", "1:65536|15663105|0|m,a,s,p")])
    assert ctx.tls_fingerprint == PYTHON_JA4 and ctx.h2_fingerprint.endswith("m,a,s,p")
    assert "tls.mismatch" in _reasons(engine, "10.0.0.1", [("x-ja4", PYTHON_JA4)])
    assert "tls.mismatch" not in _reasons(engine, "10.0.0.1", [("x-ja4", CHROME_JA4)])
    curl_h2 = ("x-h2-fingerprint", "1:65536;2:0;4:6291456|15663105|0|m,p,s,a")
    assert "tls.mismatch" in _reasons(engine, "10.0.0.1", [("x-ja4", CHROME_JA4), curl_h2])


def test_a_client_cannot_send_its_own_fingerprint_header() -> None:
    engine = _engine()
    ctx = engine.contexts.build(1000.0, "203.0.113.5", "GET", "/", [*CHROME, ("x-ja4", CHROME_JA4)])
    assert ctx.tls_fingerprint == "" and ctx.h2_fingerprint == ""
    assert "tls.mismatch" not in _reasons(engine, "203.0.113.5", [("x-ja4", PYTHON_JA4)])


def test_the_fingerprint_includes_the_edge_fingerprints() -> None:
    engine = _engine()
    base = [*CHROME, ("x-ja4", CHROME_JA4)]
    one = engine.contexts.build(1000.0, "10.0.0.1", "GET", "/", base)
    two = engine.contexts.build(1000.0, "10.0.0.1", "GET", "/", [*base[:-1], ("x-ja4", PYTHON_JA4)])
    h2 = ("x-h2-fingerprint", "a|b|c|m,a,s,p")
    three = engine.contexts.build(1000.0, "10.0.0.1", "GET", "/", [*base, h2])
    assert len({one.fingerprint, two.fingerprint, three.fingerprint}) == 3
