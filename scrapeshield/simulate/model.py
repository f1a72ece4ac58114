"""The values a persona and the replay loop exchange."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

from scrapeshield.demo.population import Population
from scrapeshield.simulate.tools import Headers
from scrapeshield.types import Action

HOST = "social.example"
DAY = 86400.0


@dataclass(slots=True)
class Req:
    """One request a simulated client sends, labelled with who sent it."""

    ts: float
    ip: str
    path: str
    headers: Headers
    ja4: str
    method: str = "GET"
    target: int = 0  # the user whose full profile this request returns (0: none)
    session: str = ""  # the person's session (people) or the scraper's worker
    targets: tuple[int, ...] = ()  # users whose profiles a list response carries in full


@dataclass(frozen=True, slots=True)
class Outcome:
    action: Action
    retry_after: float = 0.0
    real: bool = False  # the response carried the real record(s)
    held: bool = False  # a page held for its script (actions/hold.py): fields follow its proof


Actor = Generator[Req, Outcome, None]
# Solves the proof-of-work challenge as a browser would: (ip, user-agent, path) → pass cookie.
Solver = Callable[[str, str, str], str | None]


@dataclass(slots=True)
class World:
    """What personas know: the site's population, the day, randomness, the challenge solver."""

    population: Population
    rng: random.Random
    start: float
    scale: float = 1.0  # people and scrapers scale with the site (users / 10,000)
    solve: Solver = field(default=lambda ip, ua, path: None)

    def diurnal_start(self) -> float:
        """A session start over the day, denser in the evening (one peak, a night trough)."""
        while True:
            t = self.rng.random() * DAY
            hour = t / 3600
            density = 0.55 + 0.45 * math.cos((hour - 20) / 24 * 2 * math.pi)
            if self.rng.random() < density:
                return self.start + t

    def popular_user(self) -> int:
        """People read popular profiles more (Zipf-like over a fixed popularity order)."""
        n = len(self.population)
        rank = min(int(self.rng.paretovariate(0.9)), n) - 1
        return (rank * 7919) % n + 1

    def think(self, median: float = 12.0, sigma: float = 1.0) -> float:
        return self.rng.lognormvariate(math.log(median), sigma)


def served(action: Action) -> bool:
    """Whether the client got the real response (degrade and decoy do not carry it)."""
    return action is Action.ALLOW
