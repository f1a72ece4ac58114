"""User privacy levels (C10): the platform says, per user, who may read their profile.

``public``: anyone (the shield's usual protection). ``signed-in``: a signed-out read meets a
sign-in wall (401). ``protected``: personal fields are removed (degrade, or a refusal if the
policy says block) for every reader who is signed out or looks automated (score at or above
``detection.privacy.protected_score``), and one address may read only
``protected_records`` protected profiles per ``protected_window`` (a stricter budget).

Levels are set through the admin API (audited) and kept in the database; every node holds
the non-public ones in a dict for the request path and picks up other nodes' changes with
a periodic incremental reload. The policy gives the default level and a floor per route.
"""

from __future__ import annotations

import threading
from typing import Literal

from sqlalchemy import delete, insert, select

from scrapeshield.actions.responses import SIGN_IN_WALL
from scrapeshield.db.models import PrivacyLevelRow
from scrapeshield.db.store import Database
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.base import CounterSpec
from scrapeshield.types import SEVERITY, Action, Decision, RequestContext

Level = Literal["public", "signed-in", "protected"]
LEVELS: tuple[Level, ...] = ("public", "signed-in", "protected")
RANK = {"public": 0, "signed-in": 1, "protected": 2}
MAX_RECORD = 160


class PrivacyLevels:
    def __init__(self, db: Database | None = None) -> None:
        self.db = db
        self._levels: dict[str, Level] = {}  # non-public records only
        # The same dict, never replaced (changed in place): the engine's request path reads
        # whether it is empty without a Python call.
        self.table: dict[str, Level] = self._levels
        self._seen_until = 0.0  # updated_at of the newest row loaded
        self._lock = threading.Lock()
        if db is not None:
            self.reload()

    def __len__(self) -> int:
        return len(self._levels)

    def get(self, record: str) -> Level:
        return self._levels.get(record, "public")

    def set(self, records: list[str], level: Level, actor: str, now: float) -> None:
        """Store a level for records (e.g. ``user:42`` and ``username:ana``: one user, two routes)."""
        if level not in LEVELS:
            raise ValueError(f"unknown privacy level {level!r} (one of {', '.join(LEVELS)})")
        for record in records:
            if not record or len(record) > MAX_RECORD:
                raise ValueError(f"a record name has 1 to {MAX_RECORD} characters: {record[:40]!r}")
        if self.db is not None:
            with self.db.engine.begin() as conn:
                conn.execute(delete(PrivacyLevelRow).where(PrivacyLevelRow.record.in_(records)))
                conn.execute(insert(PrivacyLevelRow), [
                    {"record": r, "level": level, "updated_at": now, "updated_by": actor[:64]}
                    for r in records])
        with self._lock:
            for record in records:
                self._put(record, level)

    def reload(self) -> int:
        """Load rows changed since the last load (all of them the first time); how many."""
        if self.db is None:
            return 0
        query = select(PrivacyLevelRow.record, PrivacyLevelRow.level, PrivacyLevelRow.updated_at).where(
            PrivacyLevelRow.updated_at >= self._seen_until)
        with self.db.engine.connect() as conn:
            rows = conn.execute(query).all()
        with self._lock:
            for record, level, updated in rows:
                if level in LEVELS:
                    self._put(record, level)
                self._seen_until = max(self._seen_until, float(updated))
        return len(rows)

    def _put(self, record: str, level: Level) -> None:
        if level == "public":
            self._levels.pop(record, None)
        else:
            self._levels[record] = level


class PrivacyRules:
    """The policy's side: default level, per-route floors, and what each level does."""

    def __init__(self, policy: CompiledPolicy, levels: PrivacyLevels) -> None:
        found = policy.source.detection.privacy
        self.levels = levels
        self.default = RANK[found.default]
        self.floors = {route: RANK[level] for route, level in found.route_levels.items()}
        self.protected_score = found.protected_score
        self.protected_action = Action(found.protected_action)
        self.budget: tuple[CounterSpec, ...] = (
            (float(found.protected_window), True, found.protected_records),)
        self.limit = found.protected_records
        self.idle = not self.default and not self.floors

    def rank(self, ctx: RequestContext) -> int:
        """0 public, 1 signed-in, 2 protected, for this request's record (0 when none)."""
        if not ctx.record or (self.idle and not len(self.levels)):
            return 0
        rank = max(self.default, RANK[self.levels.get(ctx.record)])
        return max(rank, self.floors.get(ctx.route, 0)) if self.floors else rank

    def apply(self, ctx: RequestContext, decision: Decision, rank: int, used: float) -> Decision:
        """The decision with the record's level enforced (never weaker than it was)."""
        if rank == 1 and not ctx.account:
            return _stronger(decision, Action.BLOCK, WALL, "signed-in only profile, reader signed out")
        if rank != 2:
            return decision
        if used > self.limit:
            return _stronger(decision, Action.BLOCK, "privacy:protected-budget",
                             f"{int(used)} protected profiles read (limit {self.limit})")
        if not ctx.account or decision.score >= self.protected_score:
            who = "signed out" if not ctx.account else f"score {decision.score:g}"
            return _stronger(decision, self.protected_action, "privacy:protected",
                             f"protected profile, reader {who}")
        return decision


WALL = SIGN_IN_WALL  # answered 401 by every host (actions.responses.refusal)


def _stronger(decision: Decision, action: Action, rule: str, why: str) -> Decision:
    if SEVERITY[decision.action] >= SEVERITY[action]:
        return decision
    return Decision(action, decision.score, (why, *decision.reasons), rule, decision.retry_after,
                    decision.client)
