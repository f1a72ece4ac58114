"""What a simulated day produced: one ``Tally`` per persona, gathered in a ``Result``."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any


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
    misled: set[str] = field(default_factory=set)  # got a decoy or a degraded record
    held: set[str] = field(default_factory=set)  # a page held for its script (actions/hold.py)
    campaign_score: float = 0.0  # best campaign (score) this persona makes up most of
    campaign_share: float = 0.0  # share of its recorded requests in flagged campaigns

    def as_dict(self) -> dict[str, Any]:
        n = len(self.sessions) or 1
        return {
            "persona": self.name, "side": self.side, "requests": self.requests,
            "actions": dict(sorted(self.actions.items())), "real_profiles": len(self.profiles),
            "sessions": len(self.sessions),
            "sessions_blocked": len(self.blocked), "sessions_challenged": len(self.challenged),
            "sessions_throttled": len(self.throttled), "sessions_misled": len(self.misled),
            "sessions_held": len(self.held), "held_share": len(self.held) / n,
            "blocked_share": len(self.blocked) / n, "challenged_share": len(self.challenged) / n,
            "throttled_share": len(self.throttled) / n, "misled_share": len(self.misled) / n,
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
