"""Stage 6: decisions → stored events, off the request path.

Every non-allow decision is recorded, every request that touches a personal record
(``ctx.record``), and a deterministic sample of the other allows (every Nth). The request
path only appends to a bounded queue; a writer thread hands batches to the sink: the
database, or a Redis stream (``events_stream``) that a
consumer writes to the one database of all nodes. Each event gets a ``uid`` (this
recorder's random node id and a sequence number) so that a redelivery is stored once.

When the sink fails, batches go to an on-disk spool (``db.spool``) instead, and
later ones follow them there, so order is kept; the spool is delivered first once
the sink answers again, also after a restart. Retries back off up to ``retry_max``.
Client IPs become keyed hashes (HMAC-SHA256) unless the policy opts out, and events
older than the retention period are purged.
"""

from __future__ import annotations

import collections
import json
import logging
import operator
import re
import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from scrapeshield.clock import Clock, monotonic
from scrapeshield.db.clean import EVENT_COLUMNS
from scrapeshield.db.spool import EventSpool, SpoolFull
from scrapeshield.db.store import Database
from scrapeshield.jobs import yield_gil
from scrapeshield.keyed_hash import HmacSha256
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.types import Action, Decision, RequestContext

log = logging.getLogger("scrapeshield.events")

# Seconds between batch writes. What a write costs per row falls with its size: rows of one
# transaction share the pages they dirty (the indexes by client and by network put nearly
# every row on its own page otherwise). Measured through the recorder with the HTTP bench's
# events (a 20,000-row table): writes of 500 rows ~29 us of CPU per event, 2,000 ~21; and as
# the table grows (bench/eventcost.py, 600,000 requests), writes of 2,000 rows cost 28-46 us
# per event at 35,000-200,000 rows, of 8,000 rows 21-35 (mean of the second half 35.6 -> 29.0).
# At a host's usual rate (a few hundred to a few thousand events a second, less per worker
# process) a write every 2 s holds what came in meanwhile, up to BATCH. Events reach the
# database up to that much later (the admin API flushes before it reads).
FLUSH_EVERY = 2.0
BATCH = 8000  # queued events that wake the writer before FLUSH_EVERY
RETRY_BASE = 0.5  # a failed delivery waits 1 s, then 2, 4... up to retry_max (and the next wake)
# Rows are built STEP at a time: the writer builds and cleans them in Python, holding the GIL,
# and a request that needs it waits for the step to end (or for the 5 ms switch interval), so
# a step is well under a millisecond of work and the writer yields between steps.
STEP = 50
# Rows per write (one transaction, multi-row INSERTs). A commit writes every page the rows
# touched, and the events' indexes (by client above all) put nearly each row on its own page:
# on the bench machine 50 rows a transaction cost ~39 us of CPU per row, 2000 rows ~18 us
# (see FLUSH_EVERY for 8,000). The driver releases the GIL while SQLite runs each statement,
# so a large write does not hold it; it holds SQLite's write lock for ~0.2 s.
WRITE = 8000
PURGE_EVERY = 3600.0
PSEUDONYM_GENERATION = 100_000  # cached pseudonyms per generation (``Pseudonymiser``)

Sink = Callable[[list[dict[str, Any]]], None]
# A stored row: a tuple in ``EVENT_COLUMNS`` order (the writer's own), or a dict of columns
# (read back from the spool, or put back in the queue after a failed delivery).
Row = tuple[Any, ...] | dict[str, Any]
# What an event keeps of the context, taken in one call.
_FIELDS = operator.itemgetter(*map(RequestContext._fields.index, (
    "ts", "ip", "network", "method", "path", "route", "record", "user_agent", "account", "fingerprint")))
# And of the decision (the action apart: see ``EventRecorder.__call__``).
_DECISION = operator.itemgetter(*map(Decision._fields.index, ("score", "rule", "reasons")))
# A decision waiting for the writer: those fields, then the score, rule, reasons, action and
# whether to pseudonymise the addresses.
_Queued = tuple[Any, ...]
_ALLOW = Action.ALLOW  # a module constant: an Enum class attribute goes through EnumType.__getattr__
_json_string: Callable[[str], str] = json.encoder.encode_basestring_ascii
# Text that json writes as it is between quotes: printable ASCII but for '"' and '\\'.
_JSON_PLAIN = re.compile(r'[ !#-\[\]-~]*')


def _json_list(texts: tuple[str, ...]) -> str:
    """``json.dumps(list(texts))``: reasons are plain text nearly always, quoted without escapes."""
    if not texts:
        return "[]"
    if _JSON_PLAIN.fullmatch("".join(texts)):
        return '["' + '", "'.join(texts) + '"]'
    return f"[{', '.join(map(_json_string, texts))}]"


def _as_dicts(rows: Sequence[Row]) -> list[dict[str, Any]]:
    """Rows as dicts of columns: what sinks and the spool take (not the usual path)."""
    return [r if isinstance(r, dict) else dict(zip(EVENT_COLUMNS, r, strict=True)) for r in rows]


class Pseudonymiser:
    """Keyed hash of IPs (HMAC-SHA256): stable for one platform's key, not reversible without it.

    The HMAC is keyed once here (``keyed_hash``): the same digest as
    ``hmac.new(key, value, sha256)`` without re-deriving the key each time.

    Pseudonyms are cached in two generations of up to ``generation`` entries each: when the
    young one is full it becomes the old one (the former old one is dropped), and a value
    found in the old generation moves back to the young one. Clients that keep coming back
    stay cached however many one-off addresses pass through; a single dict emptied when
    full lost them all at once, and with more distinct addresses than it held it hashed
    nearly every one. At most ``2 * generation`` entries: about 175 bytes each for an IPv4
    address (the address, its pseudonym, the dict's slot), 35 MB at the default.
    """

    def __init__(self, key: bytes, generation: int = PSEUDONYM_GENERATION) -> None:
        self._keyed = HmacSha256(key)
        self._generation = generation
        self._young: dict[str, str] = {}
        self._old: dict[str, str] = {}

    def __call__(self, value: str) -> str:
        hit = self._young.get(value)
        if hit is None:
            hit = self._old.get(value)
            if hit is None:
                hit = "p:" + self._keyed.digest(value.encode())[:12].hex()
            if len(self._young) >= self._generation:
                self._old, self._young = self._young, {}
            self._young[value] = hit
        return hit

    def __len__(self) -> int:
        """Cached entries (an address in both generations counts twice)."""
        return len(self._young) + len(self._old)


class EventRecorder:
    """A decision listener that delivers events to a sink in the background.

    Counters for metrics: ``recorded`` (delivered), ``dropped`` (queue or spool full),
    ``write_errors`` (failed deliveries), ``spooled`` (events put on disk), ``spool_dropped``
    (the part of ``dropped`` refused by a full spool), ``spool_bytes`` and
    ``spool_pending`` (undelivered on disk now), ``sink_ok`` (the last delivery worked).
    """

    def __init__(
        self, db: Database, policy: CompiledPolicy, clock: Clock, pseudonymise: Pseudonymiser,
        *, sink: Sink | None = None, spool: EventSpool | None = None, retry_max: float = 30.0,
    ) -> None:
        self.db = db
        self.clock = clock
        self.pseudonymise = pseudonymise
        self.configure(policy)
        self.recorded = 0
        self.dropped = 0
        self.write_errors = 0
        self.spooled = 0
        self.spool_dropped = 0
        self.sink_ok = True
        self.node = uuid.uuid4().hex[:16]
        self._seq = 0
        self._sink = sink
        self._spool = spool
        self._retry_max = retry_max
        self._failures = 0
        self._retry_at = 0.0
        self._spool_full = False
        self._lock = threading.Lock()
        self._allows = 0
        self._queue: collections.deque[_Queued | dict[str, Any]] = collections.deque()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._idle = threading.Event()
        self._writer: threading.Thread | None = None
        self._last_purge = 0.0
        self.write_size = WRITE  # rows per delivery (built STEP at a time)

    def configure(self, policy: CompiledPolicy) -> None:
        cfg = policy.source.events
        self._every = round(1 / cfg.sample_allow) if cfg.sample_allow > 0 else 0
        self._pseudo = cfg.pseudonymise_ips
        self._retention = cfg.retention_days * 86400.0
        self._max_queue = cfg.queue_size

    @property
    def spool_bytes(self) -> int:
        return self._spool.pending_bytes if self._spool else 0

    @property
    def spool_pending(self) -> int:
        return self._spool.pending_events if self._spool else 0

    def use_spool(self, spool: EventSpool) -> None:
        """Spool to disk from now on (set before ``start``; undelivered events on it go first)."""
        with self._lock:
            self._spool = spool

    def start(self) -> None:
        if self._writer is None:
            self._writer = threading.Thread(target=self._run, name="scrapeshield-events", daemon=True)
            self._writer.start()

    def __call__(self, ctx: RequestContext, decision: Decision) -> None:
        # Allows that touch a personal record are all kept: a distributed scraper's requests
        # are each allowed, and campaign grouping and breach sizing must see every one.
        if decision.action is _ALLOW and not ctx.record:
            self._allows += 1
            if not self._every or self._allows % self._every:
                return
        if len(self._queue) >= self._max_queue:
            self.dropped += 1  # counted and exported; the queue never grows without bound
            return
        # The request path only queues the fields, as one flat tuple of strings and numbers
        # (small, and dropped from the GC's watch at its first pass: the queue lives long enough
        # to reach the oldest generation, whose growth triggers full collections); the writer
        # thread builds the row and computes the keyed hashes.
        # (The action as its plain string value: the Enum member is an object the GC tracks, and
        # so would be a tuple holding it. ``_value_`` is that string, without a call.)
        self._queue.append(_FIELDS(ctx) + _DECISION(decision) + (decision.action._value_, self._pseudo))
        if len(self._queue) >= BATCH:
            self._wake.set()

    def flush(self, try_sink: bool = True) -> None:
        """Deliver everything queued so far (the writer thread, the admin API, shutdown).

        The spool goes first; while it cannot be delivered the queue joins it on disk.
        Without a spool, undeliverable events wait in the bounded queue.
        """
        with self._lock:
            if try_sink and self._drain_spool():
                self._deliver_queue()
            else:
                self._spool_queue()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._writer is not None:
            self._writer.join(timeout=10)
        self.flush()
        if self._spool is not None:
            self._spool.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(FLUSH_EVERY)
            self._wake.clear()
            self.flush(try_sink=monotonic() >= self._retry_at)
            now = self.clock.now()
            if now - self._last_purge >= PURGE_EVERY:
                self._last_purge = now
                try:
                    self.db.purge_events(now - self._retention)
                except Exception:
                    log.exception("purging expired events failed")

    # -- delivery (under self._lock) -------------------------------------------------

    def _take(self, limit: int = STEP) -> list[Row]:
        """Up to STEP (and ``limit``) queued decisions as stored rows, with their ``uid``s, in order."""
        queue, pseudonymise, node, seq = self._queue, self.pseudonymise, self.node, self._seq
        batch: list[Row] = []
        for _ in range(min(STEP, limit, len(queue))):
            queued = queue.popleft()
            if isinstance(queued, dict):  # put back after a failure: already a stored row
                batch.append(queued)
                continue
            (ts, ip, network, method, path, route, record, ua, account, fp,
             score, rule, reasons, action, pseudo) = queued
            if pseudo:
                ip, network = pseudonymise(ip), pseudonymise(network)
            seq += 1
            # A tuple in the columns' order (EVENT_COLUMNS), handed to the database as it is.
            batch.append((f"{node}-{seq}", ts, ip, network, method, path[:512], route, record, ua[:512],
                          account, fp, action, score, rule[:96], _json_list(reasons)))
        self._seq = seq
        return batch

    def _send(self, rows: Sequence[Row]) -> bool:
        try:
            if self._sink is None:
                self.db.write_events(rows)  # looked up now: tests and wrappers may replace it
            else:
                self._sink(_as_dicts(rows))
        except Exception as exc:
            self.write_errors += 1
            self._failures += 1
            self._retry_at = monotonic() + min(self._retry_max, RETRY_BASE * 2 ** min(self._failures, 16))
            if self.sink_ok:
                log.exception("delivering %d events failed; keeping them for later", len(rows))
            else:
                log.warning("delivering events still fails (%d tries): %s", self._failures, exc)
            self.sink_ok = False
            return False
        if not self.sink_ok:
            log.warning("event delivery works again after %d failed tries", self._failures)
        self.sink_ok, self._failures = True, 0
        self.recorded += len(rows)
        return True

    def _drain_spool(self) -> bool:
        spool = self._spool
        while spool is not None and spool.pending_bytes:
            rows, position, lines = spool.read(STEP)
            if not lines:
                break
            if rows and not self._send(rows):
                return False
            spool.commit(position, lines)
            yield_gil()
        return True

    def _deliver_queue(self) -> None:
        # What is queued now, no more: events that arrive during the writes wait for the next
        # flush rather than go in a small write of their own (a write of a few rows costs
        # several times more per row than one of hundreds).
        left = len(self._queue)
        while left > 0 and self._queue:
            batch = self._take(left)
            while self._queue and len(batch) < min(self.write_size, left):
                yield_gil()
                batch += self._take(left - len(batch))
            left -= len(batch)
            if not self._send(batch):
                if self._spool is None:
                    self._queue.extendleft(reversed(_as_dicts(batch)))  # keep them, in order
                    return
                self._to_spool(batch)
                self._spool_queue()
                return
            yield_gil()

    def _spool_queue(self) -> None:
        while self._spool is not None and self._queue:
            if not self._to_spool(self._take()):
                return
            yield_gil()

    def _to_spool(self, batch: list[Row]) -> bool:
        assert self._spool is not None
        rows = _as_dicts(batch)
        try:
            self._spool.append(rows)
        except SpoolFull as exc:
            self.dropped += len(batch)
            self.spool_dropped += len(batch)
            if not self._spool_full:
                log.error("event spool full, dropping events until it drains: %s", exc)
            self._spool_full = True
            return True
        except OSError:
            log.exception("cannot write the event spool; keeping %d events in memory", len(batch))
            self._queue.extendleft(reversed(rows))
            return False
        self.spooled += len(batch)
        self._spool_full = False
        return True
