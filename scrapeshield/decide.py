"""Stage 4: score + limits + lists + rules → one Decision.

Precedence, strongest first: an analyst's list entry; a terminal policy rule;
then the stronger of the limit breaches and the score thresholds (on record
routes, scores below the challenge threshold may decoy or degrade). A valid
challenge pass turns a score-based challenge into allow (the client proved it is
a browser) and a limit-based challenge into throttle (so a solved puzzle does not
reset a data budget).
"""

from __future__ import annotations

from scrapeshield.lists import ListEntry
from scrapeshield.policy.compiled import CompiledPolicy, CompiledRule
from scrapeshield.types import SEVERITY, Action, Decision, LimitBreach


def decide(
    policy: CompiledPolicy,
    client: str,
    score: float,
    reasons: tuple[str, ...],
    breaches: list[LimitBreach],
    rule: CompiledRule | None,
    listed: ListEntry | None,
    record: bool = False,
) -> Decision:
    if listed is not None:
        # Reasons are stored with the event: an address stays out of them (events hold pseudonyms).
        named = listed.kind if listed.kind in ("ip", "network") else f"{listed.kind} {listed.value}"
        why = f"{named} on the {listed.action.value} list: {listed.reason}"
        return Decision(listed.action, score, (why, *reasons), "list", 0.0, client)
    if rule is not None and rule.action is not None:
        why = f"policy rule {rule.name!r}"
        return Decision(rule.action, score, (why, *reasons), f"rule:{rule.name}", 0.0, client)
    action = Action.ALLOW
    decided_by = "score"
    if score >= policy.block_at:
        action = Action.BLOCK
    elif score >= policy.challenge_at:
        action = Action.CHALLENGE
    elif record and policy.decoy_at is not None and score >= policy.decoy_at:
        action = Action.DECOY
    elif record and policy.degrade_at is not None and score >= policy.degrade_at:
        action = Action.DEGRADE
    retry_after = 0.0
    for breach in breaches:
        reasons = (*reasons, f"limit {breach.name}: {breach.reason}")
        if SEVERITY[breach.action] > SEVERITY[action]:
            action = breach.action
            decided_by = f"limit:{breach.name}"
        retry_after = max(retry_after, breach.retry_after)
    return Decision(action, score, reasons, decided_by, retry_after, client)


def honour_pass(decision: Decision) -> Decision:
    """The decision for a client that holds a valid challenge pass.

    A pass proves a browser, not a person (a headless browser solves the puzzle too): what
    stops a browser fleet is the evidence that reaches the block threshold or a decoy band
    (``campaign.fingerprint-breadth``), which a pass does not wash away."""
    if decision.action is not Action.CHALLENGE:
        return decision
    reasons = (*decision.reasons, "holds a valid challenge pass")
    if decision.rule.startswith("limit:"):
        return Decision(
            Action.THROTTLE, decision.score, reasons, decision.rule,
            max(decision.retry_after, 1.0), decision.client,
        )
    return Decision(Action.ALLOW, decision.score, reasons, "pass", 0.0, decision.client)
