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
from typing import Any, Final

from scrapeshield.actions.values import action_value
from scrapeshield.legal.ledger import NewEntry
from scrapeshield.types import Action, Decision, RequestContext

log = logging.getLogger("scrapeshield.legal")

_SMALL: Final = 20  # distinct user-agents / fingerprints kept per client and window
MAX_WINDOWS: Final = 48  # undrained windows kept (4 hours of 5-minute windows) before the oldest go
# Requests noted before they are counted: a batch is counted in well under a millisecond.
FOLD_AT: Final = 256
# What a window needs of a decision: ts, ip, network, route, record, user-agent, fingerprint,
# account, action, score, rule.
Row = tuple[float, str, str, str, str, str, str, str, Action, float, str]
# The shared empty counts of a client that has none (never written: replaced on first use).
# (Final: a C static in the compiled build, not a look-up in the module's dict at each use.)
_NONE: Final[dict[str, int]] = {}
_NO_ROUTES: Final[dict[str, str]] = {}
_INF: Final = math.inf


class Window:
    """One window's clients, in columns: per client a slot, and per field one list of slots.

    A ledger window holds up to ``max_clients`` clients at once; an object per client would be
    tracked by the cyclic GC, and every full collection walks them all while holding the GIL
    (tens of milliseconds at 50,000 clients, the served p99 under load). Here only the
    window's few lists are tracked: their elements are strings, numbers and dicts of strings
    and numbers, which the GC does not track.
    """

    __slots__ = ("accounts", "action1", "actions", "dropped_records", "fingerprint1", "fingerprints", "first",
                 "last", "max_score", "network", "requests", "routes", "rules", "slots", "taken", "touched",
                 "user_agent1", "user_agents")

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
        # While all of a client's requests had the same action, user-agent and fingerprint (the
        # usual case), only that one is kept, and its count is the client's requests; the dict
        # of counts is made at the first other one. Counts a client has none of share one empty
        # dict until written. (Each dict is an allocation tracked by the GC.)
        self.action1: list[str] = []
        self.user_agent1: list[str] = []
        self.fingerprint1: list[str] = []

    def slot(self, address: str, row: Row, value: str) -> int:
        """A new client's slot, for its first request ``row`` (whose action is ``value``)."""
        slot = self.slots[address] = len(self.network)
        self.network.append(row[2])
        self.action1.append(value)
        self.user_agent1.append(row[5])
        self.fingerprint1.append(row[6])
        self.requests.append(0)
        self.first.append(_INF)
        self.last.append(0.0)
        self.max_score.append(0.0)
        self.dropped_records.append(0)
        self.actions.append(_NONE)
        self.routes.append(_NONE)
        self.rules.append(_NONE)
        self.touched.append(_NONE)
        self.taken.append(_NO_ROUTES)
        self.user_agents.append(_NONE)
        self.fingerprints.append(_NONE)
        self.accounts.append(_NONE)
        return slot

    def add(self, i: int, row: Row, value: str, max_records: int) -> None:
        ts, _, _, route, record, user_agent, fingerprint, account, _, score, rule = row
        before = self.requests[i]
        self.requests[i] = before + 1
        if ts < self.first[i]:
            self.first[i] = ts
        if ts > self.last[i]:
            self.last[i] = ts
        if score > self.max_score[i]:
            self.max_score[i] = score
        _count(self.actions, self.action1, i, value, before, 0)
        if route:
            routes = self.routes[i]
            if routes is _NONE:
                routes = self.routes[i] = {}
            routes[route] = routes.get(route, 0) + 1
        allowed = value == "allow"
        if not allowed:
            rules = self.rules[i]
            if rules is _NONE:
                rules = self.rules[i] = {}
            rules[rule] = rules.get(rule, 0) + 1
        if record:
            touched = self.touched[i]
            if touched is _NONE:
                touched = self.touched[i] = {}
            if record in touched or len(touched) < max_records:
                touched[record] = 1
                taken = self.taken[i]
                if allowed and record not in taken:
                    if taken is _NO_ROUTES:
                        taken = self.taken[i] = {}
                    taken[record] = route
            else:
                self.dropped_records[i] += 1
        _count(self.user_agents, self.user_agent1, i, user_agent, before, _SMALL)
        _count(self.fingerprints, self.fingerprint1, i, fingerprint, before, _SMALL)
        if account:
            accounts = self.accounts[i]
            if accounts is _NONE:
                accounts = self.accounts[i] = {}
            _bump(accounts, account, _SMALL)

    def worth_recording(self, i: int) -> bool:
        """Clients that read personal records or met anything but ``allow`` (not asset-only browsing)."""
        if self.touched[i] or self.dropped_records[i] > 0:
            return True
        return self.counts(self.actions, self.action1, i).keys() != {"allow"}

    def counts(self, counts: list[dict[str, int]], first: list[str], i: int) -> dict[str, int]:
        """A client's counts of one field (actions, user-agents, fingerprints)."""
        found = counts[i]
        return {first[i]: self.requests[i]} if found is _NONE else found

    def body(self, i: int, start: float, end: float, node: str, network: str) -> dict[str, Any]:
        taken = self.taken[i]
        actions = self.counts(self.actions, self.action1, i)
        user_agents = self.counts(self.user_agents, self.user_agent1, i)
        fingerprints = self.counts(self.fingerprints, self.fingerprint1, i)
        return {
            "window": [start, end], "node": node, "requests": self.requests[i],
            "first": round(self.first[i], 3), "last": round(self.last[i], 3),
            "max_score": round(self.max_score[i], 1), "actions": dict(sorted(actions.items())),
            "routes": dict(sorted(self.routes[i].items())), "rules": dict(sorted(self.rules[i].items())),
            "records_touched": len(self.touched[i]) + self.dropped_records[i],
            "records_taken": sorted(taken),
            "taken_routes": {r: taken[r] for r in sorted(taken)},
            "records_not_listed": self.dropped_records[i],
            "user_agents": dict(sorted(user_agents.items(), key=lambda kv: (-kv[1], kv[0]))),
            "fingerprints": sorted(fingerprints), "networks": [network],
            "accounts": len(self.accounts[i]),
        }


def _count(counts: list[dict[str, int]], first: list[str], i: int, key: str, before: int, limit: int) -> None:
    """Count ``key`` for client ``i``, which had ``before`` requests (see ``Window.action1``)."""
    found = counts[i]
    if found is _NONE:
        if key == first[i]:
            return
        found = counts[i] = {first[i]: before}
    _bump(found, key, limit)


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
        self.totals: dict[float, dict[str, int]] = {}  # every request of a window, by decision
        self._windows: dict[float, Window] = {}
        self._dropped_windows = 0
        self._pending: list[Row] = []  # noted, not counted yet (at most about FOLD_AT)
        self._lock = threading.Lock()

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        # The request path only notes what the windows need, as one flat tuple of strings and
        # numbers; the counting is done FOLD_AT requests at a time (``fold``), under the lock
        # once per batch rather than once per request.
        pending = self._pending
        pending.append((ctx.ts, ctx.ip, ctx.network, ctx.route, ctx.record, ctx.user_agent,
                        ctx.fingerprint, ctx.account, decision.action, decision.score, decision.rule))
        if len(pending) >= FOLD_AT:
            self.fold()

    @property
    def dropped_windows(self) -> int:
        """Windows dropped undrained (``MAX_WINDOWS``)."""
        self.fold()
        return self._dropped_windows

    def fold(self) -> None:
        """Count the requests noted so far into their windows (in the order they came)."""
        with self._lock:
            pending = self._pending
            # Sliced off, not swapped: a request appending meanwhile lands after them, kept.
            count = len(pending)
            rows = pending[:count]
            del pending[:count]
            window, max_clients, max_records = self.window, self.max_clients, self.max_records
            start, clients, totals = math.nan, Window(), {"": 0}  # the last row's window, at hand
            for row in rows:
                begin = (row[0] // window) * window
                if begin != start:
                    start = begin
                    clients, totals = self._window(begin)
                value = action_value(row[8])
                totals[value] = totals.get(value, 0) + 1
                address = row[1]
                slot = clients.slots.get(address)
                if slot is None:
                    if len(clients.slots) >= max_clients:
                        self.overflow[start] += 1
                        continue
                    slot = clients.slot(address, row, value)
                clients.add(slot, row, value, max_records)

    def _window(self, start: float) -> tuple[Window, dict[str, int]]:
        """A window's clients and totals, made when new (under the lock)."""
        clients = self._windows.get(start)
        if clients is None:
            clients = self._windows[start] = Window()
            self.totals[start] = {}
            if len(self._windows) > MAX_WINDOWS:  # nobody drains (jobs not started): stay bounded
                oldest = min(self._windows)
                self._dropped_windows += 1
                del self._windows[oldest], self.totals[oldest]
                self.overflow.pop(oldest, None)
                if oldest == start:  # older than every window kept: counted nowhere
                    return Window(), {}
        return clients, self.totals[start]

    def drain(self, now: float | None) -> list[NewEntry]:
        """Take the windows closed by ``now`` (all of them when ``now`` is None) as entries."""
        self.fold()
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
                "clients": len(clients.slots) + (1 if overflow else 0)}, plain=True))
            named = {self._name(ip): i for ip, i in clients.slots.items() if clients.worth_recording(i)}
            for client in sorted(named):
                i = named[client]
                entries.append(NewEntry("window", client, clients.body(
                    i, start, end, self.node, self._name(clients.network[i])), plain=True))
            if overflow:
                entries.append(NewEntry("window", "*overflow*", {
                    "window": [start, end], "node": self.node, "requests": overflow,
                    "note": "clients beyond the collector's per-window limit, counted together"}, plain=True))
        return entries


    def _name(self, address: str) -> str:
        wanted = self.pseudonymise_ips() if callable(self.pseudonymise_ips) else self.pseudonymise_ips
        return self.pseudonymise(address) if wanted else address
