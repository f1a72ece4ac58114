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

from scrapeshield.actions.challenge import ChallengeService
from scrapeshield.actions.hold import held as is_held
from scrapeshield.clock import ManualClock
from scrapeshield.demo.population import Population
from scrapeshield.engine import Engine
from scrapeshield.goodbots.verify import GoodBots
from scrapeshield.lists import Lists
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.runtime import _challenge_settings
from scrapeshield.simulate import solver
from scrapeshield.simulate.dns import CrawlerDNS
from scrapeshield.simulate.model import Actor, Outcome, Req, World, served
from scrapeshield.simulate.personas import PERSONAS, Persona
from scrapeshield.simulate.policies import EDGE
from scrapeshield.simulate.results import Result, Tally
from scrapeshield.simulate.team import Analyst, CampaignTap
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC: the simulated day
HARMFUL = (Action.BLOCK, Action.TARPIT)
MISLEADING = (Action.DECOY, Action.DEGRADE)  # a record with fake or missing fields
HOP_BY_HOP = frozenset({"connection", "keep-alive", "proxy-connection", "te", "transfer-encoding", "upgrade"})


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
    tap: CampaignTap | None = None
    if policy is not None:
        secret = random.Random(f"secret:{seed}").randbytes(32)
        challenge = ChallengeService(secret, clock, _challenge_settings(policy))
        store = MemoryStore(idle_ttl=policy.source.state.idle_ttl, max_keys=policy.source.state.max_clients)
        # Crawlers are verified as in production: published ranges, then reverse DNS.
        engine = Engine(policy, store, clock, challenge, Lists(),
                        goodbots=GoodBots(CrawlerDNS(), inline=True))
        if campaigns or analyst_every:
            tap = CampaignTap()
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
        action, retry, held = Action.ALLOW, 0.0, False
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
            action, retry, held = decision.action, decision.retry_after, is_held(decision)
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
            elif held:  # shown at once; its script brings the fields (a browser that runs none: misled)
                tally.held.add(req.session)
            elif action in MISLEADING:
                tally.misled.add(req.session)
        try:
            nxt = actor.send(Outcome(action, retry, real, held))
        except StopIteration:
            continue
        heapq.heappush(heap, (nxt.ts, seq, who, actor, nxt))
        seq += 1
    result = Result(len(population), seed, level, tallies, tap.summary(tallies) if tap else [], decisions)
    if analyst is not None:
        result.acted = analyst.acted
    return result


def to_json(result: Result) -> str:
    return json.dumps(result.as_dict(), indent=2, sort_keys=False)
