"""Stage 4: score + limits + lists + rules → one Decision.

Precedence, strongest first: an analyst's list entry (a fingerprint entry does not reach a
verified search engine, whose fingerprint spoofers copy); a terminal policy rule;
then the stronger of the limit breaches and the score thresholds (on record
routes, scores below the challenge threshold may decoy or degrade).

A valid challenge pass answers one question, whether the client runs a real browser,
and nothing else (``honour_pass``): the signals that doubted it are set aside and the
decision is taken again on the rest. Behaviour, campaigns, traps and data budgets
still count, so a browser that solved the puzzle once cannot scrape on its pass.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.lists import ListEntry
from scrapeshield.policy.compiled import CompiledPolicy, CompiledRule
from scrapeshield.score import score
from scrapeshield.signals.catalog import ANSWERED_BY_PASS, SHAPE_ANSWERED_BY_PASS
from scrapeshield.types import SEVERITY, Action, Decision, LimitBreach, Signal, tuple_new

# How long a pass holder waits when its behaviour alone calls for a challenge on a route
# without records (a second puzzle would answer nothing new).
UNANSWERED_RETRY = 60.0
# The class as a constant (compiled: a C global, not a lookup in the module's dict per use).
_DECISION: Final = Decision


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
    if listed is not None and not (listed.kind == "fingerprint" and _verified_crawler(reasons)):
        # Reasons are stored with the event: an address stays out of them (events hold pseudonyms).
        named = listed.kind if listed.kind in ("ip", "network") else f"{listed.kind} {listed.value}"
        why = f"{named} on the {listed.action.value} list: {listed.reason}"
        return _decision(listed.action, score, (why, *reasons), "list", 0.0, client)
    if rule is not None and rule.action is not None:
        why = f"policy rule {rule.name!r}"
        return _decision(rule.action, score, (why, *reasons), f"rule:{rule.name}", 0.0, client)
    action = by_score(policy, score, record)
    decided_by = "score"
    retry_after = 0.0
    for breach in breaches:
        reasons = (*reasons, f"limit {breach.name}: {breach.reason}")
        if SEVERITY[breach.action] > SEVERITY[action]:
            action = breach.action
            decided_by = f"limit:{breach.name}"
        retry_after = max(retry_after, breach.retry_after)
    return _decision(action, score, reasons, decided_by, retry_after, client)


def _decision(action: Action, score: float, reasons: tuple[str, ...], rule: str, retry_after: float,
              client: str) -> Decision:
    """A Decision built with ``tuple_new`` (see types)."""
    return tuple_new(_DECISION, (action, score, reasons, rule, retry_after, client))


def _verified_crawler(reasons: tuple[str, ...]) -> bool:
    """A fingerprint is a claimed identity that spoofers copy; a verified search engine's
    address proves who it is, so a list entry for its fingerprint does not reach it."""
    return any(r.startswith("goodbot.verified ") for r in reasons)


def by_score(policy: CompiledPolicy, points: float, record: bool) -> Action:
    """The action the score thresholds give (decoy and degrade only on record routes)."""
    if points >= policy.block_at:
        return Action.BLOCK
    if points >= policy.challenge_at:
        return Action.CHALLENGE
    if record and policy.decoy_at is not None and points >= policy.decoy_at:
        return Action.DECOY
    if record and policy.degrade_at is not None and points >= policy.degrade_at:
        return Action.DEGRADE
    return Action.ALLOW


def wants_pass(decision: Decision) -> bool:
    """Whether a valid pass could change the decision (the engine checks one only then)."""
    return decision.action is Action.CHALLENGE or (
        decision.action is Action.BLOCK and decision.rule == "score")


def honour_pass(
    policy: CompiledPolicy,
    decision: Decision,
    signals: list[Signal],
    breaches: list[LimitBreach],
    record: bool = False,
) -> Decision:
    """The decision for a client that holds a valid challenge pass.

    A pass proves a browser, not a person (a headless browser solves the puzzle too). It
    sets aside what the puzzle answered: a declared automation user-agent
    (``ANSWERED_BY_PASS``), and below the block threshold the header and TLS oddities that
    made the request look unlike its browser (``SHAPE_ANSWERED_BY_PASS``; a request whose
    shape alone still reaches the block threshold is not the browser that solved it, e.g.
    a pass copied into a script). The rest decides. When the rest still calls for a
    challenge, another puzzle would answer nothing: record routes get the policy's decoy
    (or degrade) answer, other routes a throttle. Data budgets still apply: a budget's
    challenge becomes a throttle (a solved puzzle does not reset a budget), its block stays.
    A policy rule's or list's challenge is answered by the pass."""
    if not wants_pass(decision):
        return decision
    if decision.rule != "score" and not decision.rule.startswith("limit:"):
        return Decision(Action.ALLOW, decision.score, (*decision.reasons, "holds a valid challenge pass"),
                        "pass", 0.0, decision.client)
    kept = [s for s in signals if s.name not in ANSWERED_BY_PASS]
    shaped, _ = score(kept)
    rest, _ = score([s for s in kept if s.name not in SHAPE_ANSWERED_BY_PASS])
    action = Action.BLOCK if shaped >= policy.block_at else by_score(policy, rest, record)
    retry_after = 0.0
    if action is Action.CHALLENGE:  # behaviour a puzzle cannot answer
        if record and (policy.decoy_at is not None or policy.degrade_at is not None):
            action = Action.DECOY if policy.decoy_at is not None else Action.DEGRADE
        else:
            action, retry_after = Action.THROTTLE, UNANSWERED_RETRY
    decided_by = "pass" if action is Action.ALLOW else "score+pass"
    for breach in breaches:
        budget = Action.THROTTLE if breach.action is Action.CHALLENGE else breach.action
        if SEVERITY[budget] > SEVERITY[action]:
            action, decided_by = budget, f"limit:{breach.name}"
        retry_after = max(retry_after, breach.retry_after)
    if action is Action.THROTTLE:
        retry_after = max(retry_after, 1.0)
    reasons = (*decision.reasons,
               f"holds a valid challenge pass: scores {rest:g} without what the challenge answered")
    return Decision(action, decision.score, reasons, decided_by, retry_after, decision.client)
