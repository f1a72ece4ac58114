"""The composition root: one Shield holds the engine and everything around it."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from scrapeshield.actions.canaries import CanaryLog
from scrapeshield.actions.challenge import ChallengeService, ChallengeSettings
from scrapeshield.actions.decoy import DecoyMaker
from scrapeshield.actions.rewrite import ResponseEditor
from scrapeshield.campaigns.job import EVERY as CAMPAIGNS_EVERY
from scrapeshield.campaigns.job import CampaignJob
from scrapeshield.clock import Clock, SystemClock
from scrapeshield.console.alerts.job import EVERY as ALERTS_EVERY
from scrapeshield.console.alerts.job import AlertJob
from scrapeshield.console.monitor import Monitor
from scrapeshield.db.spool import EventSpool
from scrapeshield.db.store import Database
from scrapeshield.engine import Engine
from scrapeshield.errors import ConfigError, PolicyError
from scrapeshield.events import EventRecorder, Pseudonymiser, Sink
from scrapeshield.goodbots.hosting import Hosting
from scrapeshield.goodbots.verify import GoodBots, SystemResolver
from scrapeshield.jobs import Jobs
from scrapeshield.lists import Lists
from scrapeshield.metrics import DecisionCounter
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import load_policy
from scrapeshield.privacy.levels import PrivacyLevels
from scrapeshield.settings import Settings
from scrapeshield.state.base import StateStore
from scrapeshield.state.memory import MemoryStore

if TYPE_CHECKING:
    import redis

    from scrapeshield.events_stream import StreamConsumer

log = logging.getLogger("scrapeshield")
RETENTION_EVERY = 3600.0  # seconds between purges of data past its retention period (after one at start)


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
        self.store = self._state_store(policy)
        # Search engines verified by published ranges and forward-confirmed reverse DNS
        # (refreshed lists in <data-dir>/ip-ranges take precedence over the shipped ones).
        ranges = settings.data_dir / "ip-ranges"
        self.goodbots = GoodBots(SystemResolver(), ranges_dir=ranges)
        self.engine = Engine(policy, self.store, self.clock, self.challenge, lists,
                             self.goodbots, Hosting(ranges), PrivacyLevels(self.db))
        self.pseudonymise = Pseudonymiser(settings.derived_key("pseudonym"))
        self.stream_client: redis.Redis | None = None
        self.consumer: StreamConsumer | None = None
        self.recorder = EventRecorder(
            self.db, policy, self.clock, self.pseudonymise,
            sink=self._event_stream(),
        )
        self.counter = DecisionCounter()
        # degrade/decoy on responses; canaries written off the request path by a job.
        self.editor = ResponseEditor(
            lambda: self.engine.policy, DecoyMaker(settings.derived_key("decoy")),
            CanaryLog(self.db), self.pseudonymise, lambda: self.challenge,
        )
        self.engine.listeners += [self.counter, self.recorder]
        self.policy_errors = 0
        # Periodic work (campaign grouping, ledger, alerts) registers here; runs once started.
        self.jobs = Jobs()
        self.jobs.add("canaries", 2.0, self.editor.canaries.flush)
        self.jobs.add("privacy-levels", 30.0, self.engine.privacy.reload)  # other nodes' changes
        from scrapeshield.legal.wiring import attach_ledger  # evidence ledger (#6): listener + job

        self.ledger_feeder = attach_ledger(self)
        self.campaigns = CampaignJob(self.db, self.clock, lists=self.engine.lists)
        self.jobs.add("campaigns", CAMPAIGNS_EVERY, self.campaigns.steps)  # stepped: see jobs.py
        self.jobs.add("retention", RETENTION_EVERY, self.purge_expired, first=0.0)
        # The console (#5): live figures for the overview, and the alert job.
        self.monitor = Monitor(self.pseudonymise)
        self.engine.listeners.append(self.monitor)
        self.alerts = AlertJob(self)
        self.jobs.add("alerts", ALERTS_EVERY, self.alerts)

    @property
    def policy(self) -> CompiledPolicy:
        return self.engine.policy

    def start(self) -> None:
        """Start the background work of a serving shield: the event writer (with its disk
        spool, opened here so that a shield used in-process holds no files) and consumer."""
        self.recorder.use_spool(EventSpool(self.settings.data_dir / "spool"))
        self.recorder.start()
        if self.consumer is not None:
            self.consumer.start()
        self.jobs.start()

    def purge_expired(self) -> None:
        """Delete campaign memberships and decoy canaries past their retention periods, with
        the running policy's settings (the events' writer purges the events itself)."""
        events, now = self.engine.policy.source.events, self.clock.now()
        self.campaigns.purge(now - events.retention_days * 86400.0)
        self.editor.canaries.purge(now - events.canary_retention_days * 86400.0)

    def close(self) -> None:
        self.jobs.close()
        self.editor.canaries.flush()
        self.goodbots.close()
        from scrapeshield.legal.wiring import final_flush

        final_flush(self.ledger_feeder)
        self.recorder.close()
        if self.consumer is not None:
            self.consumer.close()
        if self.stream_client is not None:
            self.stream_client.close()
        self.db.close()
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def _event_stream(self) -> Sink | None:
        """With Redis state and a shared (non-SQLite) database, every node publishes its
        events to one Redis stream and a consumer group writes them to the database, so the
        database sees every node's traffic exactly once. Otherwise events go straight in."""
        redis_state = self.settings.redis_state()
        if redis_state is None or self.settings.db_url.startswith("sqlite"):
            return None
        from scrapeshield.events_stream import StreamConsumer, StreamPublisher, redis_client

        client = redis_client(redis_state.url)  # its own timeouts, not the state's 50 ms
        stream = f"{redis_state.prefix}:events"
        self.stream_client = client
        self.consumer = StreamConsumer(client, self.db, stream=stream)
        return StreamPublisher(client, stream=stream)

    def _state_store(self, policy: CompiledPolicy) -> StateStore:
        """In-process counters, or Redis behind a circuit breaker with the policy's fail mode."""
        state = policy.source.state
        local = MemoryStore(idle_ttl=state.idle_ttl, max_keys=state.max_clients)
        redis_state = self.settings.redis_state()
        if redis_state is None:
            return local
        from scrapeshield.state.cluster import ClusterStore, is_cluster_url  # the [redis] extra
        from scrapeshield.state.redis import RedisStore
        from scrapeshield.state.resilient import ResilientStore

        kind = ClusterStore if is_cluster_url(redis_state.url) else RedisStore
        primary = kind(redis_state.url, prefix=redis_state.prefix, idle_ttl=state.idle_ttl,
                       timeout=redis_state.timeout)
        return ResilientStore(
            primary, local, fail_mode=lambda: self.engine.policy.source.fail_mode, clock=self.clock,
            failures=redis_state.failures, reset_after=redis_state.reset,
        )

    def reload(self, path: Path | None = None) -> list[str]:
        """Load the policy again; on any problem keep the running one and return the problems."""
        target = path or self.settings.policy_path
        try:
            policy = load_policy(target)
        except PolicyError as exc:
            self.policy_errors += 1
            log.error("policy reload rejected, keeping the running policy: %s", exc)
            return exc.problems
        try:  # what the policy needs from this machine (e.g. identity.token_verify's key)
            self.engine.install(policy)
        except ConfigError as exc:
            self.policy_errors += 1
            log.error("policy reload rejected, keeping the running policy: %s", exc)
            return [str(exc)]
        self.recorder.configure(policy)
        # Same secret, and the memory of used challenges and revoked passes is kept.
        self.challenge = self.challenge.reconfigured(_challenge_settings(policy))
        self.engine.challenge = self.challenge
        log.info("policy reloaded from %s", target or "<default policy>")
        return []
