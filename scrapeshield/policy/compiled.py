"""The runtime form of a policy: everything precomputed for the request path."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass

from scrapeshield.policy.schema import Limit, Match, Policy, Route
from scrapeshield.signals.catalog import SIGNALS
from scrapeshield.types import Action

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_CAPTURE = re.compile(r"{(\w+)(?::(\w+))?}")
_CONVERTERS = {None: r"[^/]+", "str": r"[^/]+", "int": r"[0-9]{1,18}", "path": r".*"}


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    name: str
    regex: re.Pattern[str]
    record: str | None
    record_kind: str
    cost: int
    asset: bool
    personal_fields: tuple[str, ...]
    html_fields: tuple[tuple[str, str], ...] = ()  # (field, selector), see schema.Route


@dataclass(frozen=True, slots=True)
class CompiledLimit:
    index: int
    name: str
    key: str
    window: float
    limit: int
    distinct: bool
    routes: frozenset[str] | None  # None: every route
    action: Action


# The request's headers as the context holds them: (lower-cased name, value), in order.
Headers = tuple[tuple[str, str], ...]
# A rule test sees (ip, method, path, route, user agent, ua class, headers).
RuleTest = Callable[[str, str, str, str, str, str, Headers], bool]


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    test: RuleTest
    action: Action | None  # None: "weigh"
    weight: float


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    source: Policy
    trusted_proxies: tuple[IPNetwork, ...]
    routes: tuple[CompiledRoute, ...]
    routes_by_segment: dict[str, tuple[CompiledRoute, ...]]
    honeypots: frozenset[str]
    limits: tuple[CompiledLimit, ...]
    limits_by_key: dict[str, tuple[CompiledLimit, ...]]
    rules: tuple[CompiledRule, ...]
    weights: dict[str, float]
    challenge_at: float
    block_at: float
    account_regex: re.Pattern[str] | None
    rules_read_headers: bool
    degrade_at: float | None = None  # score thresholds of the record-route actions (None: off)
    decoy_at: float | None = None
    paginated_routes: frozenset[str] = frozenset()
    search_routes: frozenset[str] = frozenset()
    routes_by_name: dict[str, CompiledRoute] | None = None
    # What route_for answers for each parameterless route's own path, worked out once: most
    # requests go to a few such paths (the home page, search), and a regex match per request
    # costs more than this lookup.
    static_paths: dict[str, tuple[CompiledRoute | None, str]] | None = None

    def route_for(self, path: str) -> tuple[CompiledRoute | None, str]:
        """The route a path matches and the record it exposes ("" when none)."""
        if self.static_paths is not None:
            known = self.static_paths.get(path)
            if known is not None:
                return known
        return _match(self.routes_by_segment, path)


def _match(
    routes_by_segment: dict[str, tuple[CompiledRoute, ...]], path: str
) -> tuple[CompiledRoute | None, str]:
    """The first route, in the policy's order, whose pattern matches ``path``."""
    segment = path[1 : path.find("/", 1)] if path.find("/", 1) > 0 else path[1:]
    for route in routes_by_segment.get(segment, ()) or routes_by_segment.get("", ()):
        m = route.regex.match(path)
        if m is not None:
            if route.record is None:
                return route, ""
            return route, f"{route.record_kind}:{m.group(route.record)}"
    return None, ""


def compile_policy(policy: Policy) -> CompiledPolicy:
    routes = tuple(_compile_route(r) for r in policy.routes)
    by_segment: dict[str, list[CompiledRoute]] = {}
    for raw, route in zip(policy.routes, routes, strict=True):
        first = raw.path.split("/")[1] if raw.path.count("/") >= 1 else ""
        by_segment.setdefault("" if "{" in first else first, []).append(route)
    wildcard = by_segment.get("", [])
    segments = {k: tuple(v + (wildcard if k else [])) for k, v in by_segment.items()}
    limits = tuple(_compile_limit(i, lim) for i, lim in enumerate(policy.limits))
    by_key: dict[str, list[CompiledLimit]] = {}
    for lim in limits:
        by_key.setdefault(lim.key, []).append(lim)
    weights = {name: spec.default_weight for name, spec in SIGNALS.items()}
    weights.update(policy.weights)
    return CompiledPolicy(
        source=policy,
        trusted_proxies=tuple(ipaddress.ip_network(c, strict=False) for c in policy.trusted_proxies),
        routes=routes,
        routes_by_segment=segments,
        honeypots=frozenset(policy.honeypots),
        limits=limits,
        limits_by_key={k: tuple(v) for k, v in by_key.items()},
        rules=tuple(
            CompiledRule(
                name=r.name,
                test=_compile_match(r.match),
                action=None if r.action == "weigh" else Action(r.action),
                weight=r.weight,
            )
            for r in policy.rules
        ),
        weights=weights,
        challenge_at=policy.thresholds.challenge,
        block_at=policy.thresholds.block,
        account_regex=re.compile(policy.identity.account_pattern)
        if policy.identity.account_pattern
        else None,
        rules_read_headers=any(
            r.match.header_present or r.match.header_equals for r in policy.rules
        ),
        degrade_at=policy.thresholds.degrade,
        decoy_at=policy.thresholds.decoy,
        paginated_routes=frozenset(policy.detection.paginated_routes),
        search_routes=frozenset(policy.detection.search_routes),
        routes_by_name={r.name: r for r in routes},
        # An earlier pattern may claim a static path too: the full match decides, once.
        static_paths={r.path: _match(segments, r.path) for r in policy.routes if "{" not in r.path},
    )


def _compile_route(route: Route) -> CompiledRoute:
    pattern = ""
    last = 0
    for m in _CAPTURE.finditer(route.path):
        pattern += re.escape(route.path[last : m.start()])
        pattern += f"(?P<{m.group(1)}>{_CONVERTERS.get(m.group(2), _CONVERTERS[None])})"
        last = m.end()
    pattern += re.escape(route.path[last:]) + r"\Z"
    return CompiledRoute(
        name=route.name,
        regex=re.compile(pattern),
        record=route.record,
        record_kind=route.record_kind,
        cost=route.cost,
        asset=route.asset,
        personal_fields=tuple(route.personal_fields),
        html_fields=tuple(route.html_fields.items()),
    )


def _compile_limit(index: int, limit: Limit) -> CompiledLimit:
    return CompiledLimit(
        index=index,
        name=limit.name,
        key=limit.key,
        window=float(limit.window),
        limit=limit.limit,
        distinct=limit.distinct_records,
        routes=frozenset(limit.routes) if limit.routes else None,
        action=Action(limit.action),
    )


def _compile_match(match: Match) -> RuleTest:
    """AND of the given conditions, each an OR over its alternatives."""
    checks: list[RuleTest] = []
    if match.path_prefix:
        prefixes = tuple(match.path_prefix)
        checks.append(lambda ip, m, path, r, ua, uc, h: path.startswith(prefixes))
    if match.path_regex:
        path_re = re.compile(match.path_regex)
        checks.append(lambda ip, m, path, r, ua, uc, h: path_re.search(path) is not None)
    if match.route:
        routes = frozenset(match.route)
        checks.append(lambda ip, m, path, r, ua, uc, h: r in routes)
    if match.method:
        methods = frozenset(x.upper() for x in match.method)
        checks.append(lambda ip, m, path, r, ua, uc, h: m in methods)
    if match.ua_class:
        classes = frozenset(match.ua_class)
        checks.append(lambda ip, m, path, r, ua, uc, h: uc in classes)
    if match.ua_regex:
        ua_re = re.compile(match.ua_regex)
        checks.append(lambda ip, m, path, r, ua, uc, h: ua_re.search(ua) is not None)
    if match.cidr:
        nets = tuple(ipaddress.ip_network(c, strict=False) for c in match.cidr)
        checks.append(lambda ip, m, path, r, ua, uc, h: _in_networks(ip, nets))
    if match.header_present:
        names = frozenset(n.lower() for n in match.header_present)
        checks.append(lambda ip, m, path, r, ua, uc, h: any(k in names for k, _ in h))
    if match.header_equals:
        pairs = tuple((k.lower(), v) for k, v in match.header_equals.items())
        checks.append(lambda ip, m, path, r, ua, uc, h: all(_header(h, k) == v for k, v in pairs))
    if len(checks) == 1:
        return checks[0]
    frozen = tuple(checks)

    def every(ip: str, method: str, path: str, route: str, ua: str, ua_class: str,
              headers: Headers) -> bool:
        for check in frozen:  # (arguments spelt out: compiled, *args builds a tuple per call)
            if not check(ip, method, path, route, ua, ua_class, headers):
                return False
        return True

    return every


def _header(headers: Headers, name: str) -> str | None:
    """A header's value; the last one when it was sent several times (as a dict of them holds)."""
    for key, value in reversed(headers):
        if key == name:
            return value
    return None


def _in_networks(ip: str, nets: tuple[IPNetwork, ...]) -> bool:
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return any(addr in net for net in nets)
