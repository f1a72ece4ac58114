"""The contract every detector passes (see ``signals.base.Detector``).

``check_detector(factory)`` raises AssertionError naming the broken promise.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from scrapeshield.clock import ManualClock
from scrapeshield.context import ContextBuilder
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import load_policy
from scrapeshield.signals.base import DetectorFactory
from scrapeshield.signals.catalog import SIGNALS
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

_AGENTS = (
    "curl/8.5.0",
    "python-httpx/0.28.1",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "",
)


def random_requests(policy: CompiledPolicy, count: int, seed: int) -> list[RequestContext]:
    """A reproducible mix of plausible and odd requests from one client."""
    rng = random.Random(seed)
    clock = ManualClock()
    builder = ContextBuilder(policy)
    out = []
    for _ in range(count):
        clock.advance(rng.expovariate(1.0))
        path = rng.choice(
            ["/", "/static/app.css", f"/u/user{rng.randint(0, 50)}",
             f"/api/v1/users/{rng.randint(0, 2000)}", "/api/v1/users/0", "/x" * rng.randint(1, 5)]
        )
        headers = [("user-agent", rng.choice(_AGENTS)), ("accept", "*/*")]
        if rng.random() < 0.5:
            headers.append(("accept-language", "en"))
        out.append(builder.build(clock.now(), "192.0.2.10", "GET", path, headers))
    return out


def run(
    factory: DetectorFactory, policy: CompiledPolicy, requests: Sequence[RequestContext]
) -> list[list[Signal]]:
    detector = factory(policy)
    memory = ClientMemory(requests[0].ts if requests else 0.0)
    results = []
    for ctx in requests:
        out: list[Signal] = []
        detector.inspect(ctx, memory, out)
        results.append(out)
    return results


def check_detector(factory: DetectorFactory, policy: CompiledPolicy | None = None) -> None:
    policy = policy or load_policy()
    requests = random_requests(policy, 500, seed=7)
    copies = [r for r in requests]
    first = run(factory, policy, requests)
    assert requests == copies, "a detector changed its input"
    second = run(factory, policy, requests)
    assert first == second, "a detector is not deterministic for the same inputs"
    for signals in first:
        for signal in signals:
            assert signal.name in SIGNALS, f"signal {signal.name!r} is not in the catalog"
            assert signal.reason.strip(), f"signal {signal.name!r} has no reason"
            assert -100 <= signal.weight <= 100, f"signal {signal.name!r} weight out of range"
    detector = factory(policy)
    assert isinstance(getattr(detector, "name", None), str) and detector.name
    assert not hasattr(detector, "__dict__") or all(
        not isinstance(v, (dict, list, set)) or len(v) <= 100_000 for v in vars(detector).values()
    ), "a detector holds an unbounded collection"
