"""The composition root: one Shield holds the engine and everything around it."""

from __future__ import annotations

import logging
from pathlib import Path

from scrapeshield.actions.challenge import ChallengeService, ChallengeSettings
from scrapeshield.clock import Clock, SystemClock
from scrapeshield.db.store import Database
from scrapeshield.engine import Engine
from scrapeshield.errors import PolicyError
from scrapeshield.events import EventRecorder, Pseudonymiser
from scrapeshield.lists import Lists
from scrapeshield.metrics import DecisionCounter
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import load_policy
from scrapeshield.settings import Settings
from scrapeshield.state.memory import MemoryStore

log = logging.getLogger("scrapeshield")


def _challenge_settings(policy: CompiledPolicy) -> ChallengeSettings:
    c = policy.source.challenge
    return ChallengeSettings(
        difficulty_bits=c.difficulty_bits,
        challenge_ttl=c.challenge_ttl,
        pass_ttl=c.pass_ttl,
        bind_prefix_v4=c.bind_prefix_v4,
        bind_prefix_v6=c.bind_prefix_v6,
        max_networks_per_pass=c.max_networks_per_pass,
    )


class Shield:
    def __init__(self, settings: Settings, clock: Clock | None = None) -> None:
        self.settings = settings
        self.clock: Clock = clock or SystemClock()
        policy = load_policy(settings.policy_path)
        self.db = Database(settings.db_url)
        lists = Lists()
        for entry in self.db.live_list_entries(self.clock.now()):
            lists.add(entry)
        self.challenge = ChallengeService(
            settings.derived_key("challenge"), self.clock, _challenge_settings(policy)
        )
        state = policy.source.state
        self.store = MemoryStore(idle_ttl=state.idle_ttl, max_keys=state.max_clients)
        self.engine = Engine(policy, self.store, self.clock, self.challenge, lists)
        self.pseudonymise = Pseudonymiser(settings.derived_key("pseudonym"))
        self.recorder = EventRecorder(self.db, policy, self.clock, self.pseudonymise)
        self.counter = DecisionCounter()
        self.engine.listeners += [self.counter, self.recorder]
        self.policy_errors = 0

    @property
    def policy(self) -> CompiledPolicy:
        return self.engine.policy

    def start(self) -> None:
        self.recorder.start()

    def close(self) -> None:
        self.recorder.close()
        self.db.close()

    def reload(self, path: Path | None = None) -> list[str]:
        """Load the policy again; on any problem keep the running one and return the problems."""
        target = path or self.settings.policy_path
        try:
            policy = load_policy(target)
        except PolicyError as exc:
            self.policy_errors += 1
            log.error("policy reload rejected, keeping the running policy: %s", exc)
            return exc.problems
        self.engine.install(policy)
        self.recorder.configure(policy)
        # Same secret, and the memory of used challenges and revoked passes is kept.
        self.challenge = self.challenge.reconfigured(_challenge_settings(policy))
        self.engine.challenge = self.challenge
        log.info("policy reloaded from %s", target or "<default policy>")
        return []
