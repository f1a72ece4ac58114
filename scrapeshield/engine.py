"""The pipeline, in order: context → state → signals → score → decide → event.

This is the only module that calls the stages in sequence. It never raises: an
internal error is logged and answered with the policy's fail mode.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, cast, final

from scrapeshield.actions.hold import hold
from scrapeshield.clock import Clock
from scrapeshield.context import ContextBuilder
from scrapeshield.decide import decide, honour_pass, wants_pass
from scrapeshield.errors import StateError
from scrapeshield.goodbots.hosting import Hosting
from scrapeshield.goodbots.verify import GoodBots
from scrapeshield.lists import ListEntry, Lists
from scrapeshield.policy.compiled import CompiledLimit, CompiledPolicy, CompiledRule
from scrapeshield.privacy.levels import Level, PrivacyLevels, PrivacyRules
from scrapeshield.score import score
from scrapeshield.signals.base import Detector, DetectorBase
from scrapeshield.signals.goodbots import VERIFIED_CLASS, AddressChecks, without_crawler_findings
from scrapeshield.signals.registry import DETECTORS
from scrapeshield.signals.shared import SharedCounters
from scrapeshield.signals.user_agent import UserAgentDetector
from scrapeshield.state.base import ClientMemory, CounterSpec, KeyUpdate, StateSender, StateStore
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision, LimitBreach, RequestContext, Signal

if TYPE_CHECKING:
    from scrapeshield.actions.challenge import ChallengeService

log: Final = logging.getLogger("scrapeshield.engine")

DecisionListener = Callable[[RequestContext, Decision], None]
_MAX_MISSES: Final = 100_000
# One object for every request (not Final: mypyc would fold it into a tuple built per use),
# as the stores cache a key's shape by the identity of its costs.
_ONE_READ: tuple[int, ...] = (1,)
# Per route: (key kind, the context field it reads (-1: the client key), limits kept under
# that key, their counter specs,
# this route's cost for each (0 = does not count), and the usage above which each is breached
# for a request that reads a record and for one that does not (inf: cannot be)).
_PlanStep = tuple[
    str,
    int,
    tuple[CompiledLimit, ...],
    tuple[CounterSpec, ...],
    tuple[int, ...],
    tuple[float, ...],
    tuple[float, ...],
]
_Plan = tuple[_PlanStep, ...]


class Engine:
    def __init__(
        self,
        policy: CompiledPolicy,
        store: StateStore,
        clock: Clock,
        challenge: ChallengeService | None = None,
        lists: Lists | None = None,
        goodbots: GoodBots | None = None,
        hosting: Hosting | None = None,
        privacy: PrivacyLevels | None = None,
    ) -> None:
        self.store = store
        # A store with a fallback (ResilientStore) says whether its primary answers.
        self._store_says_up = hasattr(store, "up")
        # A store that can send its call before the reply is read (Redis) gets the state-free
        # work done meanwhile.
        self._sender = cast(StateSender, store) if hasattr(store, "send") else None
        # Without a resolver, search engines are verified by their published ranges alone.
        self.goodbots = goodbots if goodbots is not None else GoodBots()
        self.hosting = hosting if hosting is not None else Hosting()
        self.privacy = privacy if privacy is not None else PrivacyLevels()
        self.clock = clock
        self.challenge = challenge
        self.lists = lists if lists is not None else Lists()
        self.listeners: list[DecisionListener] = []
        # The privacy levels' records (the same dict for good): when it is empty and the
        # policy sets no level either, every record is public and ``rank`` is not called.
        self._private: dict[str, Level] = self.privacy.table
        self._misses: dict[str, int] = {}  # address -> 404s reported since its last decision
        self.errors = 0
        self.install(policy)

    def install(self, policy: CompiledPolicy) -> None:
        """Switch to a new compiled policy (already validated); in-flight requests finish on the old."""
        detectors: list[Detector] = [factory(policy) for factory in DETECTORS]
        ua = next(d for d in detectors if isinstance(d, UserAgentDetector))
        plans = {r.name: _plan(policy, r.name, r.cost) for r in policy.routes}
        plans[""] = _plan(policy, "", 1)
        share = getattr(self.store, "share_sets", None)
        if share is not None:  # Redis: distinct counters of the same routes share one record set
            for plan in plans.values():
                for step in plan:
                    share(step[3], [lim.routes for lim in step[2]])
        # The built-in detectors are called directly (compiled); any other, in order, through
        # the protocol.
        natives = [d for d in detectors if isinstance(d, DetectorBase)]
        runs = _Detectors(tuple(natives), ()) if len(natives) == len(detectors) else \
            _Detectors((), tuple(detectors))
        # One assignment swaps everything a request reads, so no request sees a mix.
        privacy = PrivacyRules(policy, self.privacy)
        # The routes whose challenges ``hold`` may turn into held pages (record pages with an
        # HTML field map, when the policy holds pages): for any other, it answers its input.
        holdable = frozenset(
            name for name, route in (policy.routes_by_name or {}).items() if route.html_fields
        ) if policy.source.detection.campaigns.hold_pages else frozenset()
        self._live = (policy, ContextBuilder(policy), runs, ua, plans,
                      SharedCounters(policy, self._pass_valid),
                      AddressChecks(policy, self.goodbots, self.hosting), privacy, privacy.idle, holdable)

    def _pass_valid(self, ctx: RequestContext) -> bool:
        """Whether the request's pass cookie is one the challenge service honours."""
        challenge = self.challenge
        return challenge is not None and challenge.check_pass(ctx.pass_cookie, ctx.ip, ctx.user_agent).valid

    @property
    def policy(self) -> CompiledPolicy:
        return self._live[0]

    @property
    def contexts(self) -> ContextBuilder:
        return self._live[1]

    @property
    def needs_await(self) -> bool:
        """Whether the state backend does network I/O (asyncio hosts then use ``adecide``)."""
        return self.store.does_io

    def decide(self, ctx: RequestContext) -> Decision:
        """The decision for one request; never raises."""
        try:
            pending = self._prepare(ctx)
            store = self.store
            if isinstance(store, MemoryStore):  # compiled: a direct call, not through the protocol
                self._screen(ctx, pending)
                usages, memory = store.update(pending.updates, pending.client, ctx.ts)
            elif self._sender is not None:
                # The script call leaves first; the work that needs no state is done while
                # Redis runs it, and its reply is read after (drained even if that work fails).
                call = self._sender.send(pending.updates, pending.client, ctx.ts)
                try:
                    self._screen(ctx, pending)
                finally:
                    usages, memory = self._sender.receive(call)
            else:
                self._screen(ctx, pending)
                usages, memory = store.update(pending.updates, pending.client, ctx.ts)
            decision = self._finish(ctx, pending, usages, memory)
        except Exception:  # the host application must never see our failure
            decision = self._failed(ctx)
        return self._tell(ctx, decision)

    async def adecide(self, ctx: RequestContext) -> Decision:
        """``decide`` for asyncio hosts: the state round trip does not block the event loop."""
        try:
            pending = self._prepare(ctx)
            self._screen(ctx, pending)
            usages, memory = await self.store.aupdate(pending.updates, pending.client, ctx.ts)
            decision = self._finish(ctx, pending, usages, memory)
        except Exception:
            decision = self._failed(ctx)
        return self._tell(ctx, decision)

    def observe(self, ctx: RequestContext, status: int) -> None:
        """The host reports the application's answer: a 404/410 counts toward the client's
        not-found share at its next decision on this node (no extra state round trip)."""
        if status in (404, 410):
            misses = self._misses
            if len(misses) >= _MAX_MISSES:
                misses.clear()
            misses[ctx.ip] = misses.get(ctx.ip, 0) + 1

    def _tell(self, ctx: RequestContext, decision: Decision) -> Decision:
        for listener in self.listeners:
            try:
                listener(ctx, decision)
            except Exception:
                log.exception("decision listener failed")
        return decision

    def _failed(self, ctx: RequestContext) -> Decision:
        self.errors += 1
        if isinstance(sys.exc_info()[1], StateError):
            # The state backend already logged its outage once; no traceback per request.
            log.debug("state backend unavailable; applying fail mode")
        else:
            log.exception("decision failed; applying fail mode")
        if self.policy.source.fail_mode == "closed":
            return Decision(Action.BLOCK, 0.0, ("internal error, failing closed",), "fail-closed")
        return Decision(Action.ALLOW, 0.0, ("internal error, failing open",), "fail-open", 0.0, ctx.ip)

    def _prepare(self, ctx: RequestContext) -> _Pending:
        """What the state round trip needs: the counters to touch (nothing else, so that a
        networked store's call leaves as early as it can)."""
        policy, _, detectors, ua_detector, plans, shared, addresses, privacy, idle, holdable = self._live
        plan = plans.get(ctx.route) or plans[""]
        updates: list[KeyUpdate] = []
        applied: list[_PlanStep] = []
        client = ""
        for step in plan:
            value = cast(str, ctx[step[1]]) if step[1] >= 0 else _client_key(ctx)
            if value:
                key = f"{step[0]}:{value}"
                if step[0] == "ip":
                    client = key  # the client's memory key too: built (and hashed) once
                updates.append((key, step[3], step[4], ctx.record))
                applied.append(step)
        layout, extra = shared.updates(ctx)
        if extra:
            updates += extra
        # 0 without a record, or when nothing is private: skip the call (PrivacyRules is not
        # compiled).
        rank = privacy.rank(ctx) if ctx.record and not (idle and not self._private) else 0
        if rank == 2:  # protected: its own, stricter distinct-records budget per address
            updates.append((f"protected:{ctx.ip}", privacy.budget, _ONE_READ, ctx.record))
        return _Pending(
            policy, detectors, client or f"ip:{ctx.ip}", updates, applied, layout,
            privacy if rank else None, rank, ua_detector, addresses, holdable,
        )

    def _screen(self, ctx: RequestContext, pending: _Pending) -> None:
        """What needs no state (lists, the address, rules), for ``_finish``; run while a
        networked store's call is on its way."""
        policy, ua_detector, addresses = pending.policy, pending.ua_detector, pending.addresses
        pending.listed = self.lists.match(ctx) if len(self.lists) else None
        signals = pending.signals
        ua_class = addresses.inspect(ctx, ua_detector.classify(ctx.user_agent)[0], signals)
        if policy.rules:
            for rule in policy.rules:
                if rule.test(ctx.ip, ctx.method, ctx.path, ctx.route, ctx.user_agent, ua_class, ctx.headers):
                    if rule.action is None:
                        signals.append(Signal(f"rule.{rule.name}", rule.weight, "policy rule"))
                    else:
                        pending.terminal = rule
                        break
        pending.verified_crawler = ua_class == VERIFIED_CLASS

    def _finish(
        self,
        ctx: RequestContext,
        pending: _Pending,
        usages: list[tuple[float, ...]],
        memory: ClientMemory,
    ) -> Decision:
        """Everything after it: limit breaches, detectors, score, decision, pass."""
        breaches: list[LimitBreach] = []
        protected_reads = usages[-1][0] if pending.rank == 2 else 0.0
        if len(usages) > len(pending.applied):
            count = len(pending.applied)
            # On a local fallback (Redis down) the shared counts are this node's few minutes and
            # the client's memory is fresh: too little to call anyone part of a campaign.
            if pending.layout and (not self._store_says_up or self.store.up):  # type: ignore[attr-defined]
                memory.shared = SharedCounters.view(
                    pending.layout, usages[count : len(usages) - (pending.rank == 2)])
            usages = usages[:count]
        record = bool(ctx.record)
        applied = pending.applied
        for k in range(min(len(applied), len(usages))):  # (zip() is a generic call compiled)
            step = applied[k]
            usage = usages[k]
            thresholds = step[5] if record else step[6]
            if len(usage) != len(thresholds):
                raise ValueError(f"the state answered {len(usage)} usages for {len(thresholds)} limits")
            for i in range(len(usage)):
                if usage[i] > thresholds[i]:  # nearly never
                    breaches.append(_breach(step[2][i], usage[i], ctx.ts))
        if self._misses:
            missed = self._misses.pop(ctx.ip, 0)
            if missed:
                memory.errors += missed
        signals = pending.signals
        for native in pending.detectors.natives:
            native.inspect(ctx, memory, signals)
        for detector in pending.detectors.others:
            detector.inspect(ctx, memory, signals)
        if pending.verified_crawler:
            signals = without_crawler_findings(signals)
        store = self.store
        if isinstance(store, MemoryStore):
            store.keep(pending.client, memory)
        else:
            store.keep(pending.client, memory)
        points, reasons = score(signals)
        decision = decide(
            pending.policy, ctx.ip, points, reasons, breaches, pending.terminal, pending.listed,
            bool(ctx.record),
        )
        if ctx.pass_cookie and self.challenge is not None and wants_pass(decision):
            check = self.challenge.check_pass(ctx.pass_cookie, ctx.ip, ctx.user_agent)
            if check.valid:
                decision = honour_pass(pending.policy, decision, signals, breaches, bool(ctx.record))
        if decision.action is Action.CHALLENGE and ctx.record and ctx.route in pending.holdable:
            # a page may prove its browser unseen
            decision = hold(pending.policy, ctx, decision, signals)
        if pending.privacy is not None:
            decision = pending.privacy.apply(ctx, decision, pending.rank, protected_reads)
        return decision


@final
class _Pending:
    """What ``_prepare`` hands to ``_finish`` across the state round trip (a plain class:
    compiled, it is built in a few instructions, where a NamedTuple runs Python code)."""

    def __init__(
        self, policy: CompiledPolicy, detectors: _Detectors, client: str,
        updates: list[KeyUpdate], applied: list[_PlanStep], layout: int,
        privacy: PrivacyRules | None, rank: int, ua_detector: UserAgentDetector, addresses: AddressChecks,
        holdable: frozenset[str],
    ) -> None:
        self.policy = policy
        self.detectors = detectors
        self.client = client
        self.updates = updates
        self.applied = applied  # the plan steps whose keys this request touches, in order
        self.layout = layout  # of the shared counters' usages after the limits' (0: none)
        self.privacy = privacy  # set when the record has a non-public level
        self.rank = rank  # that level (privacy.RANK); protected: its budget's usage comes last
        self.ua_detector = ua_detector  # (of the policy the counters were planned with)
        self.addresses = addresses
        self.holdable = holdable  # the routes ``hold`` may act on (of that policy too)
        # Set by ``_screen``:
        self.signals: list[Signal] = []
        self.terminal: CompiledRule | None = None
        self.listed: ListEntry | None = None
        self.verified_crawler = False  # a verified search engine's address


@final
class _Detectors:
    """The detectors a request runs: the built-in ones, or all through the protocol."""

    def __init__(self, natives: tuple[DetectorBase, ...], others: tuple[Detector, ...]) -> None:
        self.natives = natives
        self.others = others


# Which context field each limit key kind reads.
_KEY_FIELDS = {
    "ip": "ip", "subnet": "network", "account": "account", "session": "session",
    "token": "token", "fingerprint": "fingerprint",
}


def _client_key(ctx: RequestContext) -> str:
    """One browser behind an address: many people share a carrier NAT's, not a fingerprint."""
    return f"{ctx.ip}|{ctx.fingerprint}"


def _plan(policy: CompiledPolicy, route: str, cost: int) -> _Plan:
    plan: list[_PlanStep] = []
    for kind, limits in policy.limits_by_key.items():
        costs = tuple(
            (1 if lim.distinct else cost) if lim.routes is None or route in lim.routes else 0
            for lim in limits
        )
        if not any(costs):  # none of this key's limits applies here: no need to touch it
            continue
        specs = tuple((lim.window, lim.distinct, lim.limit) for lim in limits)
        read = -1 if kind == "client" else RequestContext._fields.index(_KEY_FIELDS[kind])
        # A limit counts where it costs; a distinct-records one only for a request that reads one.
        with_record = tuple(
            float(lim.limit) if cost else math.inf for lim, cost in zip(limits, costs, strict=True))
        without = tuple(math.inf if lim.distinct else t for lim, t in zip(limits, with_record, strict=True))
        plan.append((kind, read, limits, specs, costs, with_record, without))
    return tuple(plan)


def _breach(lim: CompiledLimit, used: float, now: float) -> LimitBreach:
    if lim.distinct:
        retry = max(1.0, lim.window / 10)
        why = f"{int(used)} distinct records in {lim.window:g}s (limit {lim.limit})"
    else:
        retry = max(1.0, math.ceil(lim.window - now % lim.window))
        why = f"{used:.0f} requests in {lim.window:g}s (limit {lim.limit})"
    return LimitBreach(lim.name, lim.action, retry, why)
