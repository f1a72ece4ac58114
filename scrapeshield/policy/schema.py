"""The policy file's schema: what an operator may write, validated strictly.

Pydantic models with ``extra="forbid"`` so a misspelt key is an error, not a
silent default. ``loader`` turns validation errors into messages with lines.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from scrapeshield.policy.detection import Detection
from scrapeshield.policy.legal import Legal
from scrapeshield.signals.catalog import SIGNALS

# "client": an address and a fingerprint together (one browser behind a shared address).
KeyKind = Literal["ip", "subnet", "account", "session", "token", "fingerprint", "client"]
LimitAction = Literal["throttle", "challenge", "block", "tarpit", "degrade", "decoy"]
RuleAction = Literal["allow", "throttle", "challenge", "block", "tarpit", "degrade", "decoy", "weigh"]
# "verified-search-engine": a search-engine user-agent whose address the goodbots check confirmed.
UAClassName = Literal[
    "browser", "search-engine", "verified-search-engine", "http-library", "browser-automation",
    "crawler", "empty", "other",
]

Seconds = Annotated[float, Field(gt=0, le=30 * 86400)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError as exc:
        raise ValueError(f"not an IP network: {value!r}") from exc
    return value


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value


def _check_signal(value: str) -> str:
    if value not in SIGNALS:
        raise ValueError(f"unknown signal {value!r} (known: {', '.join(sorted(SIGNALS))})")
    return value


SignalName = Annotated[str, AfterValidator(_check_signal)]
Selector = Annotated[str, Field(pattern=r"^[A-Za-z0-9]*(\.[A-Za-z0-9_-]+)?(@[a-z-]+)?$")]
Cidr = Annotated[str, AfterValidator(_check_cidr)]
Regex = Annotated[str, AfterValidator(_check_regex)]


class Route(Strict):
    """A route template; ``{name}`` captures a segment, ``{name:int}`` digits, ``{name:path}`` the rest."""

    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    path: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^/")]
    record: str | None = None  # the capture that names the personal record this route exposes
    record_kind: str = "user"
    cost: Annotated[int, Field(ge=0, le=1000)] = 1
    asset: bool = False
    personal_fields: list[str] = Field(default_factory=list)
    # JSON needs no map (keys match); "@attr" names an attribute (e.g. "img.avatar@src").
    html_fields: dict[str, Selector] = Field(default_factory=dict)  # field -> tag, .class, tag.class

    @model_validator(mode="after")
    def _record_is_a_capture(self) -> Route:
        captures = re.findall(r"{(\w+)(?::\w+)?}", self.path)
        if self.record is not None and self.record not in captures:
            raise ValueError(f"record {self.record!r} is not a capture of path {self.path!r}")
        return self


class Limit(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    key: KeyKind
    window: Seconds
    limit: Annotated[int, Field(ge=1, le=10_000_000)]
    distinct_records: bool = False  # count distinct personal records, not requests
    routes: list[str] = Field(default_factory=list)  # empty: every route
    action: LimitAction = "throttle"


class Match(Strict):
    """Every condition given must hold (AND); lists inside a condition are alternatives (OR)."""

    path_prefix: list[str] = Field(default_factory=list)
    path_regex: Regex | None = None
    route: list[str] = Field(default_factory=list)
    method: list[str] = Field(default_factory=list)
    ua_class: list[UAClassName] = Field(default_factory=list)
    ua_regex: Regex | None = None
    cidr: list[Cidr] = Field(default_factory=list)
    header_present: list[str] = Field(default_factory=list)
    header_equals: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _not_empty(self) -> Match:
        if not any(
            [self.path_prefix, self.path_regex, self.route, self.method, self.ua_class,
             self.ua_regex, self.cidr, self.header_present, self.header_equals]
        ):
            raise ValueError("a match needs at least one condition")
        return self


class Rule(Strict):
    name: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")]
    match: Match
    action: RuleAction
    weight: Annotated[float, Field(ge=-100, le=100)] = 0.0  # for action "weigh"

    @model_validator(mode="after")
    def _weigh_needs_weight(self) -> Rule:
        if self.action == "weigh" and self.weight == 0:
            raise ValueError("action 'weigh' needs a non-zero weight")
        return self


class Thresholds(Strict):
    challenge: Annotated[float, Field(ge=0, le=100)] = 50
    block: Annotated[float, Field(ge=0, le=100)] = 90
    # Scores from here up to the challenge threshold get the action on record routes.
    degrade: Annotated[float, Field(ge=0, le=100)] | None = None  # personal fields removed; null: off
    decoy: Annotated[float, Field(ge=0, le=100)] | None = None  # a fake record with a canary; null: off

    @model_validator(mode="after")
    def _ordered(self) -> Thresholds:
        if self.block < self.challenge:
            raise ValueError("block threshold must not be below the challenge threshold")
        return self


class TokenVerify(Strict):
    """The platform's app tokens are signed JWTs: only a token that verifies counts as one.

    An unverified token then counts as no token, so a fleet sending made-up tokens is judged
    as bare reads (campaign counters) instead of as the platform's app. The key is read from
    the environment, never from the policy file: a shared secret (HS*) or a PEM public key."""

    key_env: Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
    algorithms: Annotated[
        list[Literal["HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "ES256", "ES384", "EdDSA"]],
        Field(min_length=1),
    ] = ["HS256"]
    issuer: str | None = None
    audience: str | None = None
    scheme: str = "Bearer"  # the header's prefix before the token ("" for a bare token)


class Identity(Strict):
    session_cookie: str = "sid"
    account_pattern: Regex | None = None  # regex with one group: the account inside the session cookie
    token_header: str = "authorization"
    token_verify: TokenVerify | None = None
    tls_fingerprint_header: str = "x-ja4"  # believed only from trusted proxies
    h2_fingerprint_header: str = "x-h2-fingerprint"  # Akamai-style; trusted proxies only


class Challenge(Strict):
    difficulty_bits: Annotated[int, Field(ge=4, le=28)] = 16
    challenge_ttl: Seconds = 300
    pass_ttl: Seconds = 3600
    bind_prefix_v4: Annotated[int, Field(ge=8, le=32)] = 16
    bind_prefix_v6: Annotated[int, Field(ge=16, le=128)] = 48
    max_networks_per_pass: Annotated[int, Field(ge=1, le=100)] = 3


class Tarpit(Strict):
    delay: Annotated[float, Field(ge=0, le=60)] = 5.0


class Events(Strict):
    sample_allow: Annotated[float, Field(ge=0, le=1)] = 0.01
    pseudonymise_ips: bool = True
    retention_days: Annotated[int, Field(ge=1, le=3650)] = 30
    canary_retention_days: Annotated[int, Field(ge=1, le=3650)] = 730
    queue_size: Annotated[int, Field(ge=100, le=10_000_000)] = 100_000


class State(Strict):
    max_clients: Annotated[int, Field(ge=1000, le=100_000_000)] = 1_000_000
    idle_ttl: Seconds = 3600  # idle clients are forgotten after this (at least the longest window)


class Policy(Strict):
    version: Literal[1] = 1
    trusted_proxies: list[Cidr] = Field(default_factory=list)
    debug_headers: bool = False
    fail_mode: Literal["open", "closed"] = "open"
    identity: Identity = Identity()
    routes: list[Route] = Field(default_factory=list)
    honeypots: list[str] = Field(default_factory=list)  # paths no human ever requests
    limits: list[Limit] = Field(default_factory=list)
    rules: list[Rule] = Field(default_factory=list)
    weights: dict[SignalName, Annotated[float, Field(ge=-100, le=100)]] = Field(default_factory=dict)
    thresholds: Thresholds = Thresholds()
    challenge: Challenge = Challenge()
    tarpit: Tarpit = Tarpit()
    events: Events = Events()
    state: State = State()
    legal: Legal = Legal()  # data map and terms in force (scrapeshield.policy.legal)
    detection: Detection = Detection()  # behaviour, campaign and privacy settings


def cross_check(policy: Policy) -> list[tuple[tuple[str | int, ...], str]]:
    """References between sections (limits and rules naming routes): (location, problem)."""
    problems: list[tuple[tuple[str | int, ...], str]] = []
    route_names = [r.name for r in policy.routes]
    seen: set[str] = set()
    for i, route in enumerate(policy.routes):
        if route.name in seen:
            problems.append((("routes", i, "name"), f"duplicate route name {route.name!r}"))
        seen.add(route.name)
    for i, limit in enumerate(policy.limits):
        for j, name in enumerate(limit.routes):
            if name not in route_names:
                problems.append((("limits", i, "routes", j), f"unknown route {name!r}"))
    for i, rule in enumerate(policy.rules):
        for j, name in enumerate(rule.match.route):
            if name not in route_names:
                problems.append((("rules", i, "match", "route", j), f"unknown route {name!r}"))
    found = policy.detection
    for section, names in (("paginated_routes", found.paginated_routes),
                           ("search_routes", found.search_routes)):
        for j, name in enumerate(names):
            if name not in route_names:
                problems.append((("detection", section, j), f"unknown route {name!r}"))
    for name in found.privacy.route_levels:
        if name not in route_names:
            problems.append((("detection", "privacy", "route_levels", name), f"unknown route {name!r}"))
    return problems
