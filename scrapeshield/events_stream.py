"""Events of many nodes in one database, through a Redis stream and a consumer group.

Each node's ``EventRecorder`` gets a ``StreamPublisher`` as its sink: the writer thread
XADDs a batch in one pipeline (``MAXLEN ~`` bounds the stream). When Redis fails the
recorder spools the batch on disk, as it does for a database, and publishes it later.

``StreamConsumer`` (one or more per deployment, each with its own name, in a shield
process or alone) reads the group, writes the events to the database and XACKs
them. It first re-reads its own pending entries (a restart under the same name), and
every ``claim_every`` seconds takes over entries another consumer left pending longer
than ``claim_idle_ms`` (it died mid-batch) with XAUTOCLAIM. Delivery is at least once;
the database stores each event ``uid`` once, so the result is exactly once.
With ``trim_acked`` (the default: this group is the stream's only reader) the
consumer also trims what the group has read and acknowledged (XTRIM MINID ~), so the
stream holds only the backlog and MAXLEN is the bound for a consumer outage. Entries
trimmed by MAXLEN before any consumer read them are lost: size it for the longest
outage (``lost`` counts trimmed entries found pending).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
from typing import Any, cast

import redis

from scrapeshield.clock import monotonic
from scrapeshield.db.models import EventRow
from scrapeshield.db.store import Database

log = logging.getLogger("scrapeshield.events")

STREAM = "scrapeshield:events"
GROUP = "scrapeshield-db"
FIELD = "event"
_COLUMNS = frozenset(c.name for c in EventRow.__table__.columns) - {"id"}
_REQUIRED = _COLUMNS - {"uid"}
Entry = tuple[Any, Any]  # (id, fields or None when trimmed)


def redis_client(url: str, *, block_ms: int = 1000) -> redis.Redis:
    """A client whose timeouts suit both sides: fail fast, but outlast a blocking read."""
    timeout = max(5.0, 2 * block_ms / 1000)
    from scrapeshield.state.cluster import is_cluster_url, plain_url

    if is_cluster_url(url):  # the stream is one key: any cluster client works
        from redis.cluster import RedisCluster

        # The publisher and consumer use only commands both clients share (XADD, XREADGROUP, ...).
        return cast("redis.Redis", RedisCluster.from_url(
            plain_url(url), socket_connect_timeout=2, socket_timeout=timeout))
    return redis.Redis.from_url(
        url, socket_connect_timeout=2, socket_timeout=timeout, health_check_interval=30
    )


class StreamPublisher:
    """An ``EventRecorder`` sink: one pipelined round trip per batch; raises when Redis fails."""

    def __init__(self, client: redis.Redis, stream: str = STREAM, maxlen: int = 1_000_000) -> None:
        self.client = client
        self.stream = stream
        self.maxlen = maxlen
        self.published = 0

    def __call__(self, rows: list[dict[str, Any]]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for row in rows:
            pipe.xadd(self.stream, {FIELD: json.dumps(row, separators=(",", ":"))},
                      maxlen=self.maxlen, approximate=True)
        pipe.execute()
        self.published += len(rows)


class StreamConsumer:
    """Stream → database for one member of the consumer group. ``step`` is one round."""

    def __init__(
        self, client: redis.Redis, db: Database, *, name: str | None = None, stream: str = STREAM,
        group: str = GROUP, batch: int = 500, block_ms: int = 1000, claim_idle_ms: int = 60_000,
        claim_every: float = 5.0, trim_acked: bool = True,
    ) -> None:
        self.client, self.db = client, db
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.stream, self.group = stream, group
        self.batch, self.block_ms = batch, block_ms
        self.claim_idle_ms, self.claim_every = claim_idle_ms, claim_every
        self.trim_acked = trim_acked
        self.written = self.claimed = self.bad = self.lost = self.errors = 0
        self._own_first = True  # re-read our pending entries: on start and after a failure
        self._claim_at = 0.0
        self._cursor: Any = "0-0"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def ensure_group(self) -> None:
        try:
            self.client.xgroup_create(self.stream, self.group, id="0", mkstream=True)
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise

    def step(self) -> int:
        """Handle one batch (own pending, claimed, or new); the number of entries handled."""
        try:
            entries = self._next_entries()
        except redis.ResponseError as exc:
            if "NOGROUP" not in str(exc):
                raise
            log.warning("stream group %s missing (new, or Redis restarted empty); creating it", self.group)
            self.ensure_group()
            self._cursor = "0-0"
            return 0
        if entries:
            try:
                self._handle(entries)
            except BaseException:
                self._own_first = True  # unacked: they are ours to retry first
                raise
        return len(entries)

    def start(self) -> None:
        if self._thread is None:  # the group is made by the first step (Redis may be down now)
            self._thread = threading.Thread(target=self._run, name="scrapeshield-stream", daemon=True)
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.block_ms / 1000 + 10)

    # -- internals ----------------------------------------------------------------

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            try:
                self.step()
                if failures:
                    log.warning("stream consumer %s works again after %d failures", self.name, failures)
                failures = 0
            except Exception:
                self.errors += 1
                failures += 1
                if failures == 1:
                    log.exception("stream consumer %s failed; retrying", self.name)
                self._stop.wait(min(30.0, 0.25 * 2 ** min(failures, 8)))

    def _next_entries(self) -> list[Entry]:
        if self._own_first:
            entries = self._read("0", block=None)
            if entries:
                return entries
            self._own_first = False
        if monotonic() >= self._claim_at:
            entries = self._claim()
            if entries:
                return entries
        return self._read(">", block=self.block_ms)

    def _read(self, start: str, block: int | None) -> list[Entry]:
        reply: Any = self.client.xreadgroup(
            self.group, self.name, {self.stream: start}, count=self.batch, block=block
        )
        if not reply:
            return []
        if isinstance(reply, dict):  # RESP3: {stream: [[entries]]}
            return [entry for value in reply.values() for entry in (value[0] if value else [])]
        return list(reply[0][1])  # RESP2: [[stream, [entries]]]

    def _claim(self) -> list[Entry]:
        reply: Any = self.client.xautoclaim(
            self.stream, self.group, self.name, self.claim_idle_ms, self._cursor, count=self.batch
        )
        self._cursor = reply[0]
        if self._cursor in (b"0-0", "0-0"):
            self._claim_at = monotonic() + self.claim_every  # a full pass done: rest a while
            if self.trim_acked:
                self._trim()
        trimmed = list(reply[2]) if len(reply) > 2 else []
        if trimmed:  # claimed but gone from the stream: nothing to write, only to forget
            self.lost += len(trimmed)
            self.client.xack(self.stream, self.group, *trimmed)
            log.error("%d pending stream entries were trimmed before delivery", len(trimmed))
        entries = list(reply[1])
        if entries:
            self.claimed += len(entries)
            log.warning("consumer %s claimed %d entries left pending by another", self.name, len(entries))
        return entries

    def _trim(self) -> None:
        """Drop entries older than both the group's read position and its oldest pending one."""
        groups: Any = self.client.xinfo_groups(self.stream)
        mine = next((g for g in groups if _text(g.get("name")) == self.group), None)
        if mine is None:
            return
        keep_from = _text(mine.get("last-delivered-id"))
        summary: Any = self.client.xpending(self.stream, self.group)
        if summary.get("pending") and summary.get("min"):
            keep_from = min(keep_from, _text(summary["min"]), key=_id_key)
        if keep_from != "0-0":
            self.client.xtrim(self.stream, minid=keep_from, approximate=True)

    def _handle(self, entries: list[Entry]) -> None:
        rows: list[dict[str, Any]] = []
        for entry_id, fields in entries:
            if not fields:
                self.lost += 1  # pending, but trimmed from the stream
                continue
            row = _parse(fields)
            if row is None:
                self.bad += 1
                log.error("skipping unreadable stream entry %r", entry_id)
            else:
                rows.append(row)
        self.db.write_events(rows)
        self.client.xack(self.stream, self.group, *[entry_id for entry_id, _ in entries])
        self.written += len(rows)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _id_key(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


def _parse(fields: dict[Any, Any]) -> dict[str, Any] | None:
    raw = fields.get(FIELD.encode(), fields.get(FIELD))
    try:
        row = json.loads(raw) if raw is not None else None
    except ValueError:
        return None
    if not isinstance(row, dict) or not _REQUIRED <= row.keys():
        return None
    return {k: v for k, v in row.items() if k in _COLUMNS}
