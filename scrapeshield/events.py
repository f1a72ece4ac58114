"""Stage 6: decisions → stored events, off the request path.

Every non-allow decision is recorded, and a deterministic sample of allows (every
Nth). The request path only appends to a bounded queue; a writer thread inserts
batches. Client IPs become keyed hashes (HMAC-SHA256) unless the policy opts out,
and events older than the retention period are purged.
"""

from __future__ import annotations

import collections
import hashlib
import hmac
import json
import logging
import threading
from typing import Any

from scrapeshield.clock import Clock
from scrapeshield.db.store import Database
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.types import Action, Decision, RequestContext

log = logging.getLogger("scrapeshield.events")

FLUSH_EVERY = 0.5  # seconds between batch writes
BATCH = 2000
PURGE_EVERY = 3600.0


class Pseudonymiser:
    """Keyed hash of IPs: stable for one platform's key, not reversible without it."""

    def __init__(self, key: bytes) -> None:
        self._key = key
        self._cache: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        hit = self._cache.get(value)
        if hit is None:
            digest = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
            hit = "p:" + digest[:24]
            if len(self._cache) >= 100_000:
                self._cache.clear()
            self._cache[value] = hit
        return hit


class EventRecorder:
    """A decision listener that writes events to the database in the background."""

    def __init__(
        self, db: Database, policy: CompiledPolicy, clock: Clock, pseudonymise: Pseudonymiser
    ) -> None:
        self.db = db
        self.clock = clock
        self.pseudonymise = pseudonymise
        self.configure(policy)
        self.recorded = 0
        self.dropped = 0
        self.write_errors = 0
        self._allows = 0
        self._queue: collections.deque[dict[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_purge = 0.0

    def configure(self, policy: CompiledPolicy) -> None:
        cfg = policy.source.events
        self._every = round(1 / cfg.sample_allow) if cfg.sample_allow > 0 else 0
        self._pseudo = cfg.pseudonymise_ips
        self._retention = cfg.retention_days * 86400.0
        self._max_queue = cfg.queue_size

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="scrapeshield-events", daemon=True)
            self._thread.start()

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        if decision.action is Action.ALLOW:
            self._allows += 1
            if not self._every or self._allows % self._every:
                return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1  # counted and exported; the queue never grows without bound
            return
        ip = self.pseudonymise(ctx.ip) if self._pseudo else ctx.ip
        network = self.pseudonymise(ctx.network) if self._pseudo else ctx.network
        self._queue.append(
            {
                "ts": ctx.ts, "client": ip, "network": network, "method": ctx.method,
                "path": ctx.path[:512], "route": ctx.route, "record": ctx.record,
                "user_agent": ctx.user_agent[:512], "account": ctx.account,
                "fingerprint": ctx.fingerprint, "action": decision.action.value,
                "score": decision.score, "rule": decision.rule[:96],
                "reasons": json.dumps(list(decision.reasons)),
            }
        )
        if len(self._queue) >= BATCH:
            self._wake.set()

    def flush(self) -> None:
        """Write everything queued so far (called by the writer thread and on shutdown)."""
        while self._queue:
            batch = [self._queue.popleft() for _ in range(min(BATCH, len(self._queue)))]
            try:
                self.db.write_events(batch)
                self.recorded += len(batch)
            except Exception:
                self.write_errors += 1
                log.exception("writing %d events failed; will retry", len(batch))
                self._queue.extendleft(reversed(batch))  # keep them, in order
                return

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.flush()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self.flush()
            now = self.clock.now()
            if now - self._last_purge >= PURGE_EVERY:
                self._last_purge = now
                try:
                    self.db.purge_events(now - self._retention)
                except Exception:
                    log.exception("purging expired events failed")
