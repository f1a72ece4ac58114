"""A group of clients → a scored ``Campaign``: the score, its reasons and a label."""

from __future__ import annotations

import math
from collections import Counter

from scrapeshield.campaigns.members import THIN_REQUESTS, Campaign, ClientSummary
from scrapeshield.context import short_hash


def campaign_id(kind: str, key: str) -> str:
    """Stable per trait: regrouping the same trait updates the same campaign."""
    return "cmp-" + short_hash(f"{kind}\x1f{key}")[:12]


def build_campaign(kind: str, key: str, members: list[ClientSummary]) -> Campaign:
    requests = sum(m.requests for m in members)
    record_requests = sum(m.record_requests for m in members)
    records = len(set().union(*(m.records for m in members)))
    records = max(records, max(m.records_seen for m in members))
    approx_records = max(records, min(sum(m.records_seen for m in members), record_requests))
    score, reasons = _score(kind, key, members, requests, record_requests, approx_records)
    return Campaign(
        id=campaign_id(kind, key), kind=kind, key=key[:200], label=_label(kind, key, members),
        first_seen=min(m.first_seen for m in members), last_seen=max(m.last_seen for m in members),
        clients=len(members), requests=requests, records=approx_records, score=score,
        reasons=tuple(reasons), members=tuple(sorted(members, key=lambda m: m.client)),
    )


def _score(
    kind: str, key: str, members: list[ClientSummary], requests: int, record_requests: int,
    records: int,
) -> tuple[float, list[str]]:
    """0-100 from what the members did, with a reason per part that counted.

    Parts: the engine's own scores for these requests, the share refused, how many of
    the clients are thin hops reading records only, and the volume of distinct records
    relative to the number of clients (a crowd of people reads few profiles each).
    """
    n = len(members)
    reasons = [f"{n} clients share {_trait_words(kind)}"]
    mean_score = sum(m.score_sum for m in members) / max(requests, 1)
    refused = sum(m.refused for m in members) / max(requests, 1)
    thin = sum(1 for m in members if m.thin) / n
    points = 0.0
    if mean_score >= 5:
        points += min(35.0, mean_score * 0.7)
        reasons.append(f"mean request score {mean_score:.0f}")
    if refused >= 0.02:
        points += min(25.0, refused * 60)
        reasons.append(f"{refused:.0%} of requests refused")
    # People in a crowd read the same popular profiles; a coordinated scraper's hops
    # each fetch records no other hop fetched: breadth near 1.
    breadth = records / record_requests if record_requests else 0.0
    if thin >= 0.5 and n >= 20 and breadth >= 0.6:
        points += 15 + min(10.0, 10 * (thin - 0.5) * 2)
        reasons.append(f"{thin:.0%} of clients are thin hops (≤{THIN_REQUESTS} requests, records only)")
    if records >= 200 and breadth >= 0.8:
        points += min(20.0, 6 * math.log10(records / 100))
        reasons.append(f"{records} distinct records, {breadth:.0%} of reads new")
    if 0.5 <= thin < 0.97 and n >= 20:
        # Thin hops with a minority of ordinary clients: people share this trait.
        reasons.append(f"{1 - thin:.0%} of clients are not thin hops (people may share this "
                       f"{kind}): prefer challenge to block")
    signals = Counter[str]()
    for m in members:
        signals.update(m.reasons)
    if signals:
        top = ", ".join(r for r, _ in signals.most_common(3))
        reasons.append(f"top reasons: {top}")
    return round(min(100.0, points), 1), reasons


def _trait_words(kind: str) -> str:
    return {
        "fingerprint": "one client fingerprint",
        "network": "one subnet",
        "pacing": "one pacing profile",
        "targets": "an overlapping target list",
    }.get(kind, kind)


def _label(kind: str, key: str, members: list[ClientSummary]) -> str:
    if kind == "fingerprint":
        agents = Counter(m.user_agent for m in members).most_common(1)
        agent = agents[0][0] if agents else ""
        return f"fingerprint {key[:16]} ({agent[:80] or 'no user-agent'})"
    if kind == "network":
        return f"subnet {key[:40]}"
    if kind == "pacing":
        return f"pace {key[:80]}"
    return f"targets {short_hash(key)[:8]}"
