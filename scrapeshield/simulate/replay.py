"""The simulated day: every persona's requests, in time order, through the real engine.

A heap orders the next request of every client; the engine decides it at the request's
own time on a ManualClock; the client's generator gets the outcome and answers with its
next request. Ground truth is kept per persona: a profile counts as obtained only when
the response carried the real record (``allow``; ``degrade`` and ``decoy`` do not).
"""

from __future__ import annotations

import heapq
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from scrapeshield.actions.challenge import ChallengeService
from scrapeshield.campaigns.grouping import CampaignGrouper
from scrapeshield.clock import ManualClock
from scrapeshield.demo.population import Population
from scrapeshield.engine import Engine
from scrapeshield.lists import ListEntry, Lists
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.runtime import _challenge_settings
from scrapeshield.signals.user_agent import classify
from scrapeshield.simulate import solver
from scrapeshield.simulate.model import Actor, Outcome, Req, World, served
from scrapeshield.simulate.personas import PERSONAS, Persona
from scrapeshield.simulate.policies import EDGE
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision, RequestContext, UAClass

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC: the simulated day
HARMFUL = (Action.BLOCK, Action.TARPIT)
FLAGGED = 50.0  # a campaign an analyst would look at
SAMPLE_EVERY = 100  # the default policy's events.sample_allow (1 %)
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"})


@dataclass(slots=True)
class Tally:
    """One persona's day."""

    name: str
    side: str
    requests: int = 0
    actions: Counter[str] = field(default_factory=Counter)
    profiles: set[int] = field(default_factory=set)
    sessions: set[str] = field(default_factory=set)
    blocked: set[str] = field(default_factory=set)
    challenged: set[str] = field(default_factory=set)
    throttled: set[str] = field(default_factory=set)
    campaign_score: float = 0.0  # best campaign (score) this persona makes up most of
    campaign_share: float = 0.0  # share of its recorded requests in flagged campaigns

    def as_dict(self) -> dict[str, Any]:
        n = len(self.sessions) or 1
        return {
            "persona": self.name, "side": self.side, "requests": self.requests,
            "actions": dict(sorted(self.actions.items())), "real_profiles": len(self.profiles),
            "sessions": len(self.sessions),
            "sessions_blocked": len(self.blocked), "sessions_challenged": len(self.challenged),
            "sessions_throttled": len(self.throttled),
            "blocked_share": len(self.blocked) / n, "challenged_share": len(self.challenged) / n,
            "throttled_share": len(self.throttled) / n,
            "campaign_score": self.campaign_score, "campaign_share": self.campaign_share,
        }


@dataclass(slots=True)
class Result:
    users: int
    seed: int
    level: str
    tallies: list[Tally]
    campaigns: list[dict[str, Any]]
    decisions: int
    acted: list[dict[str, Any]] = field(default_factory=list)  # the analyst's list entries

    def as_dict(self) -> dict[str, Any]:
        return {"users": self.users, "seed": self.seed, "level": self.level, "decisions": self.decisions,
                "personas": [t.as_dict() for t in self.tallies], "campaigns": self.campaigns,
                "analyst": self.acted}

    def tally(self, name: str) -> Tally:
        return next(t for t in self.tallies if t.name == name)


class _CampaignTap:
    """What the event recorder would store (every record-touching or refused request, one in
    ``SAMPLE_EVERY`` other allows, as the default policy samples) fed to a grouper, with each
    client's persona remembered for the report."""

    def __init__(self) -> None:
        self.grouper = CampaignGrouper(min_score=20.0)
        self.persona_of: dict[str, Counter[str]] = {}
        self.current = ""
        self.allows = 0

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        if not ctx.record and decision.action is Action.ALLOW:
            self.allows += 1
            if self.allows % SAMPLE_EVERY:
                return
        self.persona_of.setdefault(ctx.ip, Counter())[self.current] += 1
        self.grouper.observe({
            "ts": ctx.ts, "client": ctx.ip, "network": ctx.network, "fingerprint": ctx.fingerprint,
            "user_agent": ctx.user_agent, "account": ctx.account, "route": ctx.route, "record": ctx.record,
            "action": decision.action.value, "score": decision.score, "reasons": list(decision.reasons),
        })

    def summary(self, tallies: list[Tally], limit: int = 12) -> list[dict[str, Any]]:
        """The strongest campaigns with who is in them; per persona, how much of it was
        grouped into a flagged campaign (score >= FLAGGED)."""
        out = []
        flagged: set[str] = set()
        best: dict[str, float] = {}
        for i, c in enumerate(self.grouper.campaigns()):
            who: Counter[str] = Counter()
            for m in c.members:
                who.update(self.persona_of.get(m.client, Counter()))
            if c.score >= FLAGGED:
                flagged.update(m.client for m in c.members)
            if who:
                top, n = who.most_common(1)[0]
                if n * 2 >= sum(who.values()):
                    best[top] = max(best.get(top, 0.0), c.score)
            if i < limit:
                out.append({**c.as_dict(), "personas": dict(who.most_common(4))})
        total: Counter[str] = Counter()
        grouped: Counter[str] = Counter()
        for client, per in self.persona_of.items():
            total.update(per)
            if client in flagged:
                grouped.update(per)
        for tally in tallies:
            tally.campaign_score = best.get(tally.name, 0.0)
            tally.campaign_share = grouped[tally.name] / total[tally.name] if total[tally.name] else 0.0
        return out


def simulate(
    policy: CompiledPolicy | None, *, users: int = 10_000, seed: int = 1, level: str = "default",
    personas: tuple[Persona, ...] = PERSONAS, population: Population | None = None,
    campaigns: bool = True, analyst_every: float = 0.0,
) -> Result:
    """One simulated day of a ``users``-user site under ``policy`` (``None``: no protection).

    ``analyst_every`` (seconds, 0 = never): an analyst who, that often, acts on the strongest
    fingerprint campaigns found so far (see ``Analyst``)."""
    population = population or Population.generate(users, seed)
    clock = ManualClock(START)
    rng = random.Random(f"simulate:{seed}")
    engine: Engine | None = None
    challenge: ChallengeService | None = None
    tap: _CampaignTap | None = None
    if policy is not None:
        secret = random.Random(f"secret:{seed}").randbytes(32)
        challenge = ChallengeService(secret, clock, _challenge_settings(policy))
        store = MemoryStore(idle_ttl=policy.source.state.idle_ttl, max_keys=policy.source.state.max_clients)
        engine = Engine(policy, store, clock, challenge, Lists())
        if campaigns or analyst_every:
            tap = _CampaignTap()
            engine.listeners.append(tap)
    analyst = Analyst(engine, tap, analyst_every) if engine and tap and analyst_every else None
    service = challenge

    def solve(ip: str, ua: str, path: str) -> str | None:
        return solver.solve(service, ip, ua, path) if service is not None else None

    world = World(population, rng, START, scale=len(population) / 10_000, solve=solve)
    tallies: list[Tally] = []
    heap: list[tuple[float, int, int, Actor, Req]] = []
    seq = 0
    for persona in personas:
        tally = Tally(persona.name, persona.side)
        tallies.append(tally)
        for actor in persona.build(world):
            first = next(actor, None)
            if first is not None:
                heapq.heappush(heap, (first.ts, seq, len(tallies) - 1, actor, first))
                seq += 1
    n = len(population)
    decisions = 0
    while heap:
        ts, _, who, actor, req = heapq.heappop(heap)
        ts = max(ts, clock.now())
        clock.set(ts)
        if analyst is not None:
            analyst.maybe_act(ts)
        tally = tallies[who]
        action, retry = Action.ALLOW, 0.0
        if engine is not None:
            if tap is not None:
                tap.current = tally.name
            path, _, query = req.path.partition("?")
            # The edge terminates the client's connection: hop-by-hop headers stop there, and
            # it adds the client's address and TLS fingerprint.
            headers = [h for h in req.headers if h[0] not in HOP_BY_HOP]
            headers += [("x-forwarded-for", req.ip), ("x-ja4", req.ja4)]
            ctx = engine.contexts.build(ts, EDGE, req.method, path, headers, "https", query)
            decision = engine.decide(ctx)
            action, retry = decision.action, decision.retry_after
        decisions += 1
        real = served(action) and 1 <= req.target <= n
        tally.requests += 1
        tally.actions[action.value] += 1
        if real:
            tally.profiles.add(req.target)
        if req.session:
            tally.sessions.add(req.session)
            if action in HARMFUL:
                tally.blocked.add(req.session)
            elif action is Action.CHALLENGE:
                tally.challenged.add(req.session)
            elif action is Action.THROTTLE:
                tally.throttled.add(req.session)
        try:
            nxt = actor.send(Outcome(action, retry, real))
        except StopIteration:
            continue
        heapq.heappush(heap, (nxt.ts, seq, who, actor, nxt))
        seq += 1
    result = Result(len(population), seed, level, tallies, tap.summary(tallies) if tap else [], decisions)
    if analyst is not None:
        result.acted = analyst.acted
    return result


class Analyst:
    """The anti-scraping team, acting on campaigns as ``scrapeshield campaigns act`` does:
    every ``every`` seconds, each fingerprint campaign scoring at least ``ACT_AT`` goes on the
    list for a day. A fingerprint that claims to be a browser may be shared by people (a
    popular browser build), so it is challenged (people pass, scripts do not); one whose
    user-agent is a library, automation or a crawler is blocked."""

    ACT_AT = 65.0

    def __init__(self, engine: Engine, tap: _CampaignTap, every: float) -> None:
        self.engine, self.tap, self.every = engine, tap, every
        self.next = 0.0
        self.acted: list[dict[str, Any]] = []
        self.done: set[str] = set()

    def maybe_act(self, now: float) -> None:
        if now < self.next:
            return
        if not self.next:
            self.next = now
        self.next += self.every
        for c in self.tap.grouper.campaigns():
            if c.score < self.ACT_AT or c.kind != "fingerprint" or c.key in self.done:
                continue
            agent = Counter(m.user_agent for m in c.members).most_common(1)[0][0]
            browser = classify(agent)[0] is UAClass.BROWSER
            action = Action.CHALLENGE if browser else Action.BLOCK
            self.engine.lists.add(ListEntry("fingerprint", c.key, action, now + 86400,
                                            f"campaign {c.id} (score {c.score:.0f})", "analyst"))
            self.done.add(c.key)
            self.acted.append({"at": now, "campaign": c.id, "action": action.value, "score": c.score,
                               "clients": c.clients})


def to_json(result: Result) -> str:
    return json.dumps(result.as_dict(), indent=2, sort_keys=False)
