"""What the ledger is fed: per-window summaries of every client's requests, taken from every
decision (not the sampled events table), plus analyst actions and campaign states.

``WindowCollector`` listens to the engine and keeps, per window and client, counts of requests
and decisions, the personal records touched and the ones actually served (decision ``allow``;
a throttle, challenge, block, tarpit, degrade or decoy did not hand the real record over), the
routes, user-agents, fingerprints and networks. Memory is bounded: at most ``max_clients`` per
window (the rest are counted together) and ``max_records`` record keys per client.
``scrapeshield.legal.feed`` writes the closed windows to the ledger.
"""

from __future__ import annotations

import logging
import math
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from scrapeshield.legal.ledger import NewEntry
from scrapeshield.types import Action, Decision, RequestContext

log = logging.getLogger("scrapeshield.legal")

_SMALL = 20  # distinct user-agents / fingerprints kept per client and window
_VALUES = {action: action.value for action in Action}
MAX_WINDOWS = 48  # undrained windows kept (4 hours of 5-minute windows) before the oldest go


class ClientWindow:
    """One client's window. Plain dicts of strings and numbers only (sets and Counters would
    be tracked by the cyclic GC and cost several times more per new client on the request path)."""

    __slots__ = ("accounts", "actions", "dropped_records", "fingerprints", "first", "last", "max_score",
                 "network", "requests", "routes", "rules", "taken", "touched", "user_agents")

    def __init__(self, network: str) -> None:
        self.network = network  # an address is in one network: kept once
        self.requests = 0
        self.first = math.inf
        self.last = 0.0
        self.max_score = 0.0
        self.dropped_records = 0
        self.actions: dict[str, int] = {}
        self.routes: dict[str, int] = {}
        self.rules: dict[str, int] = {}
        self.touched: dict[str, int] = {}
        self.taken: dict[str, str] = {}  # record → the route that served it
        self.user_agents: dict[str, int] = {}
        self.fingerprints: dict[str, int] = {}
        self.accounts: dict[str, int] = {}

    def add(self, ctx: RequestContext, decision: Decision, value: str, max_records: int) -> None:
        self.requests += 1
        ts = ctx.ts
        if ts < self.first:
            self.first = ts
        if ts > self.last:
            self.last = ts
        if decision.score > self.max_score:
            self.max_score = decision.score
        actions = self.actions
        actions[value] = actions.get(value, 0) + 1
        route = ctx.route
        if route:
            routes = self.routes
            routes[route] = routes.get(route, 0) + 1
        allowed = value == "allow"
        if not allowed:
            rules = self.rules
            rules[decision.rule] = rules.get(decision.rule, 0) + 1
        record = ctx.record
        if record:
            touched = self.touched
            if record in touched or len(touched) < max_records:
                touched[record] = 1
                if allowed and record not in self.taken:
                    self.taken[record] = route
            else:
                self.dropped_records += 1
        _bump(self.user_agents, ctx.user_agent, _SMALL)
        _bump(self.fingerprints, ctx.fingerprint, _SMALL)
        if ctx.account:
            _bump(self.accounts, ctx.account, _SMALL)

    def worth_recording(self) -> bool:
        """Clients that read personal records or met anything but ``allow`` (not asset-only browsing)."""
        return bool(self.touched) or self.dropped_records > 0 or self.actions.keys() != {"allow"}

    def body(self, start: float, end: float, node: str, network: str) -> dict[str, Any]:
        return {
            "window": [start, end], "node": node, "requests": self.requests,
            "first": round(self.first, 3), "last": round(self.last, 3),
            "max_score": round(self.max_score, 1), "actions": dict(sorted(self.actions.items())),
            "routes": dict(sorted(self.routes.items())), "rules": dict(sorted(self.rules.items())),
            "records_touched": len(self.touched) + self.dropped_records,
            "records_taken": sorted(self.taken),
            "taken_routes": {r: self.taken[r] for r in sorted(self.taken)},
            "records_not_listed": self.dropped_records,
            "user_agents": dict(sorted(self.user_agents.items(), key=lambda kv: (-kv[1], kv[0]))),
            "fingerprints": sorted(self.fingerprints), "networks": [network],
            "accounts": len(self.accounts),
        }


def _bump(counts: dict[str, int], key: str, limit: int = 0) -> None:
    """Count ``key``; with a ``limit``, new keys beyond it are not added (bounded memory)."""
    n = counts.get(key)
    if n is not None:
        counts[key] = n + 1
    elif not limit or len(counts) < limit:
        counts[key] = 1


class WindowCollector:
    """An engine listener (``engine.listeners``): cheap, thread-safe, bounded."""

    def __init__(self, pseudonymise: Callable[[str], str], *, window: float = 300.0,
                 pseudonymise_ips: bool | Callable[[], bool] = True, max_clients: int = 50_000,
                 max_records: int = 20_000, node: str = "") -> None:
        self.window = window
        self.pseudonymise = pseudonymise
        # A callable is asked at each write: the running policy's setting, reloads included.
        self.pseudonymise_ips = pseudonymise_ips
        self.max_clients = max_clients
        self.max_records = max_records
        self.node = node
        self.overflow: Counter[float] = Counter()  # requests of clients beyond max_clients, per window
        self.totals: dict[float, Counter[str]] = {}  # every request of a window, by decision
        self._windows: dict[float, dict[str, ClientWindow]] = {}
        self.dropped_windows = 0
        self._lock = threading.Lock()

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        # Keyed by the raw address in memory only; pseudonymised once per client and window
        # when the window is written (an HMAC per request would cost more than all the rest).
        start = (ctx.ts // self.window) * self.window
        value = _VALUES[decision.action]  # Enum.value is a Python-level property: slow
        with self._lock:
            clients = self._windows.get(start)
            if clients is None:
                clients = self._windows[start] = {}
                self.totals[start] = Counter()
                if len(self._windows) > MAX_WINDOWS:  # nobody drains (jobs not started): stay bounded
                    oldest = min(self._windows)
                    self.dropped_windows += 1
                    del self._windows[oldest], self.totals[oldest]
                    self.overflow.pop(oldest, None)
            self.totals[start][value] += 1
            stats = clients.get(ctx.ip)
            if stats is None:
                if len(clients) >= self.max_clients:
                    self.overflow[start] += 1
                    return
                stats = clients[ctx.ip] = ClientWindow(ctx.network)
            stats.add(ctx, decision, value, self.max_records)

    def drain(self, now: float | None) -> list[NewEntry]:
        """Take the windows closed by ``now`` (all of them when ``now`` is None) as entries."""
        with self._lock:
            closed = sorted(s for s in self.totals if now is None or s + self.window <= now)
            taken = [(s, self._windows.pop(s, {}), self.overflow.pop(s, 0), self.totals.pop(s))
                     for s in closed]
        entries: list[NewEntry] = []
        for start, clients, overflow, totals in taken:
            end = start + self.window
            entries.append(NewEntry("totals", "*all*", {
                "window": [start, end], "node": self.node, "requests": sum(totals.values()),
                "actions": dict(sorted(totals.items())), "clients": len(clients) + (1 if overflow else 0)}))
            named = {self._name(ip): stats for ip, stats in clients.items() if stats.worth_recording()}
            for client in sorted(named):
                stats = named[client]
                entries.append(NewEntry("window", client,
                                        stats.body(start, end, self.node, self._name(stats.network))))
            if overflow:
                entries.append(NewEntry("window", "*overflow*", {
                    "window": [start, end], "node": self.node, "requests": overflow,
                    "note": "clients beyond the collector's per-window limit, counted together"}))
        return entries


    def _name(self, address: str) -> str:
        wanted = self.pseudonymise_ips() if callable(self.pseudonymise_ips) else self.pseudonymise_ips
        return self.pseudonymise(address) if wanted else address
