"""The anti-scraping team in the simulation: the campaign grouping job's view of the day
(``CampaignTap``) and an analyst who acts on what it finds (``Analyst``)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from scrapeshield.campaigns.grouping import CampaignGrouper
from scrapeshield.engine import Engine
from scrapeshield.lists import ListEntry
from scrapeshield.signals.user_agent import classify
from scrapeshield.simulate.results import Tally
from scrapeshield.types import Action, Decision, RequestContext, UAClass

FLAGGED = 50.0  # a campaign an analyst would look at
SAMPLE_EVERY = 100  # the default policy's events.sample_allow (1 %)


class CampaignTap:
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


class Analyst:
    """The anti-scraping team, acting on campaigns as ``scrapeshield campaigns act`` does:
    every ``every`` seconds, each fingerprint campaign scoring at least ``ACT_AT`` goes on the
    list for a day. A fingerprint that claims to be a browser may be shared by people (a
    popular browser build), so it is challenged (people pass, scripts do not); one whose
    user-agent is a library, automation or a crawler is blocked."""

    ACT_AT = 65.0

    def __init__(self, engine: Engine, tap: CampaignTap, every: float) -> None:
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
