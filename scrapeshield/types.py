"""Frozen values passed between the pipeline stages.

context → signals → score → decide → actions → events. Immutable so a stage cannot
change what an earlier stage saw, and cheap enough to build per request: what every
request builds is a NamedTuple (compiled, a frozen dataclass costs ~9,000 instructions to
build, a NamedTuple under 1,000), the rest frozen, slotted dataclasses.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Final, NamedTuple


class Action(enum.StrEnum):
    ALLOW = "allow"
    THROTTLE = "throttle"
    CHALLENGE = "challenge"
    BLOCK = "block"
    TARPIT = "tarpit"
    DEGRADE = "degrade"
    DECOY = "decoy"


# Severity order used when several rules ask for different actions: the strongest wins.
SEVERITY: dict[Action, int] = {
    Action.ALLOW: 0,
    Action.DEGRADE: 1,
    Action.DECOY: 2,
    Action.THROTTLE: 3,
    Action.CHALLENGE: 4,
    Action.TARPIT: 5,
    Action.BLOCK: 6,
}


class UAClass(enum.StrEnum):
    BROWSER = "browser"
    SEARCH_ENGINE = "search-engine"
    HTTP_LIBRARY = "http-library"
    AUTOMATION = "browser-automation"
    CRAWLER = "crawler"
    EMPTY = "empty"
    OTHER = "other"


class RequestContext(NamedTuple):
    """Everything the engine knows about one request, at the request's own time.

    A NamedTuple rather than a frozen dataclass: equally immutable and typed, and
    four times cheaper to build, which matters once per request.
    """

    ts: float
    ip: str  # resolved client IP (canonical text form)
    network: str  # subnet key: /24 for IPv4, /48 for IPv6
    scheme: str  # "http" or "https" as the client used it (from a trusted proxy's header)
    method: str
    path: str
    route: str  # route name from the policy's route map, "" when none matched
    record: str  # the personal record the route exposes ("user:42"), "" when none
    headers: tuple[tuple[str, str], ...]  # lower-cased names, original order
    user_agent: str
    account: str  # "" when signed out
    session: str  # "" when no session cookie
    token: str  # API token ("" when none)
    fingerprint: str  # stable hash of the client's claimed identity (UA, header order, TLS)
    tls_fingerprint: str  # JA4 (or similar) from a trusted edge header, "" when absent
    referer: str
    pass_cookie: str  # challenge pass as presented ("" when none)
    is_asset: bool
    cost: int  # per-route cost for request limits
    host: str  # Host header ("" when absent)
    client_hints: str | None  # sec-ch-ua as sent, None when absent
    header_names: tuple[str, ...]  # the names of ``headers``, in order (read by several detectors)
    query: str = ""  # the query string as sent (truncated), "" when none
    h2_fingerprint: str = ""  # Akamai-style HTTP/2 fingerprint from a trusted edge, "" when absent


class Signal(NamedTuple):
    """One detector finding: a named reason with the weight it adds to the score."""

    name: str
    weight: float
    reason: str


# ``tuple.__new__(SomeNamedTuple, values)`` builds a NamedTuple without its own ``__new__``,
# which is Python code: about twice the cost when called from compiled code. (Held here:
# compiled, a module constant is a C global, not a method lookup per call.)
tuple_new: Final = tuple.__new__


# The class as a constant (compiled: a C global, where the name is looked up in the
# module's dict at every use).
SIGNAL: Final = Signal


def new_signal(name: str, weight: float, reason: str) -> Signal:
    """``Signal(name, weight, reason)``, built with ``tuple_new``."""
    return tuple_new(SIGNAL, (name, weight, reason))


class LimitBreach(NamedTuple):
    """A limit that this request took over its budget."""

    name: str
    action: Action
    retry_after: float
    reason: str


class Decision(NamedTuple):
    action: Action
    score: float
    reasons: tuple[str, ...]
    rule: str  # what decided it: a rule name, a limit name, "score", "list", "fail-open"…
    retry_after: float = 0.0
    client: str = ""  # the client key the decision is about (IP)


@dataclass(frozen=True, slots=True)
class Event:
    """What the events stage records for one decision."""

    ts: float
    client: str  # pseudonymised unless the policy says otherwise
    network: str
    method: str
    path: str
    route: str
    record: str
    user_agent: str
    account: str
    fingerprint: str
    action: Action
    score: float
    rule: str
    reasons: tuple[str, ...] = field(default_factory=tuple)
