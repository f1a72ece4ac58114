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


class Window:
    """One window's clients, in columns: per client a slot, and per field one list of slots.

    A ledger window holds up to ``max_clients`` clients at once; an object per client would be
    tracked by the cyclic GC, and every full collection walks them all while holding the GIL
    (tens of milliseconds at 50,000 clients, the served p99 under load). Here only the
    window's few lists are tracked: their elements are strings, numbers and dicts of strings
    and numbers, which the GC does not track.
    """

    __slots__ = ("accounts", "actions", "dropped_records", "fingerprints", "first", "last", "max_score",
                 "network", "requests", "routes", "rules", "slots", "taken", "touched", "user_agents")

    def __init__(self) -> None:
        self.slots: dict[str, int] = {}  # client address → its slot
        self.network: list[str] = []  # an address is in one network: kept once
        self.requests: list[int] = []
        self.first: list[float] = []
        self.last: list[float] = []
        self.max_score: list[float] = []
        self.dropped_records: list[int] = []
        self.actions: list[dict[str, int]] = []
        self.routes: list[dict[str, int]] = []
        self.rules: list[dict[str, int]] = []
        self.touched: list[dict[str, int]] = []
        self.taken: list[dict[str, str]] = []  # record → the route that served it
        self.user_agents: list[dict[str, int]] = []
        self.fingerprints: list[dict[str, int]] = []
        self.accounts: list[dict[str, int]] = []

    def slot(self, address: str, network: str) -> int:
        """A new client's slot."""
        slot = self.slots[address] = len(self.network)
        self.network.append(network)
        self.requests.append(0)
        self.first.append(math.inf)
        self.last.append(0.0)
        self.max_score.append(0.0)
        self.dropped_records.append(0)
        self.actions.append({})
        self.routes.append({})
        self.rules.append({})
        self.touched.append({})
        self.taken.append({})
        self.user_agents.append({})
        self.fingerprints.append({})
        self.accounts.append({})
        return slot

    def add(self, i: int, ctx: RequestContext, decision: Decision, value: str, max_records: int) -> None:
        self.requests[i] += 1
        ts = ctx.ts
        if ts < self.first[i]:
            self.first[i] = ts
        if ts > self.last[i]:
            self.last[i] = ts
        if decision.score > self.max_score[i]:
            self.max_score[i] = decision.score
        actions = self.actions[i]
        actions[value] = actions.get(value, 0) + 1
        route = ctx.route
        if route:
            routes = self.routes[i]
            routes[route] = routes.get(route, 0) + 1
        allowed = value == "allow"
        if not allowed:
            rules = self.rules[i]
            rules[decision.rule] = rules.get(decision.rule, 0) + 1
        record = ctx.record
        if record:
            touched = self.touched[i]
            if record in touched or len(touched) < max_records:
                touched[record] = 1
                taken = self.taken[i]
                if allowed and record not in taken:
                    taken[record] = route
            else:
                self.dropped_records[i] += 1
        _bump(self.user_agents[i], ctx.user_agent, _SMALL)
        _bump(self.fingerprints[i], ctx.fingerprint, _SMALL)
        if ctx.account:
            _bump(self.accounts[i], ctx.account, _SMALL)

    def worth_recording(self, i: int) -> bool:
        """Clients that read personal records or met anything but ``allow`` (not asset-only browsing)."""
        return bool(self.touched[i]) or self.dropped_records[i] > 0 or self.actions[i].keys() != {"allow"}

    def body(self, i: int, start: float, end: float, node: str, network: str) -> dict[str, Any]:
        taken = self.taken[i]
        return {
            "window": [start, end], "node": node, "requests": self.requests[i],
            "first": round(self.first[i], 3), "last": round(self.last[i], 3),
            "max_score": round(self.max_score[i], 1), "actions": dict(sorted(self.actions[i].items())),
            "routes": dict(sorted(self.routes[i].items())), "rules": dict(sorted(self.rules[i].items())),
            "records_touched": len(self.touched[i]) + self.dropped_records[i],
            "records_taken": sorted(taken),
            "taken_routes": {r: taken[r] for r in sorted(taken)},
            "records_not_listed": self.dropped_records[i],
            "user_agents": dict(sorted(self.user_agents[i].items(), key=lambda kv: (-kv[1], kv[0]))),
            "fingerprints": sorted(self.fingerprints[i]), "networks": [network],
            "accounts": len(self.accounts[i]),
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
        self._windows: dict[float, Window] = {}
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
                clients = self._windows[start] = Window()
                self.totals[start] = Counter()
                if len(self._windows) > MAX_WINDOWS:  # nobody drains (jobs not started): stay bounded
                    oldest = min(self._windows)
                    self.dropped_windows += 1
                    del self._windows[oldest], self.totals[oldest]
                    self.overflow.pop(oldest, None)
            self.totals[start][value] += 1
            slot = clients.slots.get(ctx.ip)
            if slot is None:
                if len(clients.slots) >= self.max_clients:
                    self.overflow[start] += 1
                    return
                slot = clients.slot(ctx.ip, ctx.network)
            clients.add(slot, ctx, decision, value, self.max_records)

    def drain(self, now: float | None) -> list[NewEntry]:
        """Take the windows closed by ``now`` (all of them when ``now`` is None) as entries."""
        with self._lock:
            closed = sorted(s for s in self.totals if now is None or s + self.window <= now)
            taken = [(s, self._windows.pop(s) if s in self._windows else Window(), self.overflow.pop(s, 0),
                      self.totals.pop(s)) for s in closed]
        entries: list[NewEntry] = []
        for start, clients, overflow, totals in taken:
            end = start + self.window
            entries.append(NewEntry("totals", "*all*", {
                "window": [start, end], "node": self.node, "requests": sum(totals.values()),
                "actions": dict(sorted(totals.items())),
                "clients": len(clients.slots) + (1 if overflow else 0)}))
            named = {self._name(ip): i for ip, i in clients.slots.items() if clients.worth_recording(i)}
            for client in sorted(named):
                i = named[client]
                entries.append(NewEntry("window", client, clients.body(
                    i, start, end, self.node, self._name(clients.network[i]))))
            if overflow:
                entries.append(NewEntry("window", "*overflow*", {
                    "window": [start, end], "node": self.node, "requests": overflow,
                    "note": "clients beyond the collector's per-window limit, counted together"}))
        return entries


    def _name(self, address: str) -> str:
        wanted = self.pseudonymise_ips() if callable(self.pseudonymise_ips) else self.pseudonymise_ips
        return self.pseudonymise(address) if wanted else address
