"""The policy a replay runs: the platform's own, with the signals a log cannot carry turned off.

An access log records the address, time, request line, status, referer and user-agent.
Header set and order, client hints and TLS or HTTP/2 fingerprints are not in it, so their
detectors would judge every line by headers it never had. They are given weight 0 — in the
line-at-a-time path and in the batch path alike, so both reach the same decisions — and the
report names them.
"""

from __future__ import annotations

import dataclasses

from scrapeshield.policy.compiled import CompiledPolicy

# Signals the batch path reproduces exactly (forensics.batch); the rest are off in replays.
BATCH_SIGNALS = frozenset(
    {
        "ua.http-library",
        "ua.browser-automation",
        "ua.crawler",
        "ua.search-engine-unverified",
        "ua.empty",
        "ua.other",
        "ua.automation-reading",
        "behaviour.no-assets",
        "enumeration.sequential",
        "honeypot.hit",
        "enumeration.strided",
        "behaviour.breadth",
        "behaviour.few-assets",
        "behaviour.not-found",
        "behaviour.deep-pagination",
        "behaviour.never-sleeps",
    }
)
LOG_KEYS = frozenset({"ip", "subnet", "fingerprint", "account", "session", "token"})


@dataclasses.dataclass(frozen=True)
class ReplayPolicy:
    compiled: CompiledPolicy
    off: tuple[str, ...]  # signals weighted 0 in this replay, with why


def replay_policy(policy: CompiledPolicy) -> ReplayPolicy:
    weights = dict(policy.weights)
    off: list[str] = []
    for name in sorted(weights):
        if name in BATCH_SIGNALS or not weights[name]:
            continue
        weights[name] = 0.0
        off.append(f"{name} ({_why(name)})")
    return ReplayPolicy(dataclasses.replace(policy, weights=weights), tuple(off))


def _why(name: str) -> str:
    if name.startswith(("headers.", "tls.", "h2.")):
        return "needs request headers a log does not record"
    if name == "behaviour.no-referer-chain":
        return "needs the Host header a log does not record"
    return "not reproduced by the batch path yet"
