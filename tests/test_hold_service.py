"""hold (actions/hold.py) where the page cannot be rewritten: the decision service.

Apart from tests/test_hold.py, whose Playwright fixture keeps an event loop running in the
test thread (these in-process ASGI calls start their own).
"""

from __future__ import annotations

from pathlib import Path

from test_decision_service import AUTH, CHROME, FORWARD, call, make, original, seen

from scrapeshield.actions.hold import held
from scrapeshield.policy.loader import default_policy_text


def test_the_decision_service_challenges_what_the_middleware_holds(tmp_path: Path) -> None:
    """nginx auth_request and forward-auth cannot rewrite the page: a held decision is a
    challenge there (401 with the page's link; the challenge page itself)."""
    app, shield, clock = make(tmp_path, default_policy_text().replace("trusted_proxies: []",
                                                                      "trusted_proxies: [127.0.0.1]"))
    log = seen(shield)
    for i in range(60):  # a referer-less fleet on this build, one read per address
        clock.advance(1.0)
        call(app, AUTH, original(f"/u/fleet{i}", CHROME, client=f"{24 + i % 50}.{i + 1}.{i}.9"))
    clock.advance(1.0)
    answer = call(app, AUTH, original("/u/alice", CHROME, client="81.2.69.160"))
    assert held(log[-1][1]), log[-1][1]
    assert (answer.status, answer.action) == (401, "challenge")
    assert "x-scrapeshield-challenge" in answer.headers
    clock.advance(1.0)
    page = call(app, FORWARD, original("/u/bob", CHROME, client="81.2.69.161", family="forward"))
    assert held(log[-1][1])
    assert (page.status, page.action) == (403, "challenge") and b"ss-challenge" in page.body
