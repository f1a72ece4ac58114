"""Events of many nodes through a real Redis stream into one database, each exactly once."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture
from servers import free_port

from scrapeshield.clock import ManualClock
from scrapeshield.db.spool import EventSpool
from scrapeshield.db.store import Database
from scrapeshield.events import EventRecorder, Pseudonymiser
from scrapeshield.events_stream import FIELD, GROUP, STREAM, StreamConsumer, StreamPublisher, redis_client
from scrapeshield.policy.loader import parse_policy
from scrapeshield.types import Action, Decision, RequestContext

POLICY = parse_policy("events: {queue_size: 100000}\n")
BLOCK = Decision(Action.BLOCK, 90, ("http-library",), "test")


class RedisServer:
    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="ss-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        self.process = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                assert self.process.poll() is None and time.monotonic() < deadline, "no redis-server"
                time.sleep(0.02)
        client.close()

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()  # an outage, not a shutdown: nothing is saved
            self.process.wait()
            self.process = None


@pytest.fixture(scope="module")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    client = redis_client(redis_server.url, block_ms=200)
    client.flushall()
    yield client
    client.close()


def ctx(n: int) -> RequestContext:
    return RequestContext(
        ts=1_700_000_000.0 + n, ip=f"203.0.113.{n % 250}", network="203.0.113.0/24", scheme="http",
        method="GET", path=f"/api/v1/users/{n}", route="profile_api", record=f"user:{n}", headers=(),
        user_agent="curl/8.5.0", account="", session="", token="", fingerprint="f", tls_fingerprint="",
        referer="", pass_cookie="", is_asset=False, cost=1, host="", client_hints=None, header_names=(),
    )


def node(tmp: Path, client: redis.Redis, **kwargs: Any) -> EventRecorder:
    """One shield node's recorder: publishes to the stream, spools when Redis is down."""
    tmp.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{tmp / 'node.db'}")  # the node's own database: lists, audit
    return EventRecorder(db, POLICY, ManualClock(), Pseudonymiser(b"k" * 32), sink=StreamPublisher(client),
                         spool=EventSpool(tmp / "spool"), **kwargs)


def eventually(check: Callable[[], bool], seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


def assert_exactly_once(db: Database, count: int) -> None:
    events = db.recent_events(limit=count + 10)
    assert len(events) == count == db.count_events()
    assert len({e["uid"] for e in events}) == count


def pending(client: redis.Redis) -> int:
    return int(client.xpending(STREAM, GROUP)["pending"])


class Killed(BaseException):
    """The consumer process dies here (kill -9): nothing after this line runs."""


class DyingDatabase:
    """A consumer's database that dies just before or just after committing its first batch."""

    def __init__(self, db: Database, after_write: bool) -> None:
        self.db, self.after_write = db, after_write

    def write_events(self, rows: list[dict[str, Any]]) -> None:
        if self.after_write:
            self.db.write_events(rows)
        raise Killed


def test_two_nodes_two_consumers_every_event_once(
    client: redis.Redis, pg_server: PostgresServer, tmp_path: Path  # noqa: F811
) -> None:
    url = pg_server.create_database()
    nodes = [node(tmp_path / name, client) for name in ("a", "b")]
    consumers = [StreamConsumer(client, Database(url), name=f"c{i}", block_ms=100, claim_every=0.05)
                 for i in range(2)]
    for part in (*nodes, *consumers):
        part.start()

    def traffic(recorder: EventRecorder, base: int) -> None:
        for n in range(base, base + 1500):
            recorder(ctx(n), BLOCK)

    threads = [threading.Thread(target=traffic, args=(r, i * 10_000)) for i, r in enumerate(nodes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for recorder in nodes:
        recorder.close()  # flushes the last batch to the stream
    db = Database(url)
    eventually(lambda: db.count_events() >= 3000 and pending(client) == 0)
    eventually(lambda: client.xlen(STREAM) < 500)  # what the group read and acked is trimmed
    for consumer in consumers:
        consumer.close()
        consumer.db.close()
    for recorder in nodes:
        recorder.db.close()
    assert_exactly_once(db, 3000)
    assert sum(c.written for c in consumers) == 3000 and all(c.errors == 0 for c in consumers)
    assert {e["uid"].split("-")[0] for e in db.recent_events(limit=5000)} == {r.node for r in nodes}
    db.close()


def test_consumer_killed_mid_batch_its_entries_are_claimed_once(client: redis.Redis, tmp_path: Path) -> None:
    publisher = node(tmp_path, client)
    for n in range(300):
        publisher(ctx(n), BLOCK)
    publisher.close()
    publisher.db.close()
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    for name, after_write in (("dies-after-commit", True), ("dies-before-commit", False)):
        dying = StreamConsumer(client, DyingDatabase(db, after_write), name=name, batch=100)  # type: ignore[arg-type]
        dying.ensure_group()
        with pytest.raises(Killed):
            dying.step()
    assert db.count_events() == 100 and pending(client) == 200
    survivor = StreamConsumer(client, db, name="survivor", batch=100, block_ms=50, claim_idle_ms=300,
                              claim_every=0)
    while survivor.step():
        pass  # the last 100 new ones (the dead ones' entries are claimed once idle for 300 ms)
    time.sleep(0.35)
    while survivor.step():
        pass
    assert survivor.claimed == 200 and pending(client) == 0
    assert_exactly_once(db, 300)
    db.close()


def test_redis_outage_publisher_spools_consumer_recovers(
    client: redis.Redis, redis_server: RedisServer, tmp_path: Path
) -> None:
    publisher = node(tmp_path, client, retry_max=0.2)
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    consumer = StreamConsumer(client, db, name="c", block_ms=100)
    consumer.start()
    for n in range(100):
        publisher(ctx(n), BLOCK)
    publisher.flush()
    eventually(lambda: db.count_events() == 100)
    redis_server.stop()  # killed: comes back empty, without the stream or the group
    try:
        for n in range(100, 400):
            publisher(ctx(n), BLOCK)
        publisher.flush()
        assert publisher.spooled == 300 and not publisher.sink_ok
    finally:
        redis_server.start()
    publisher.flush()
    assert publisher.spool_pending == 0 and publisher.sink_ok
    eventually(lambda: db.count_events() == 400)
    consumer.close()
    publisher.close()
    publisher.db.close()
    assert consumer.errors >= 1, "the outage was seen, and survived"
    assert_exactly_once(db, 400)
    db.close()


def test_unreadable_entries_are_acknowledged_and_counted(client: redis.Redis, tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    consumer = StreamConsumer(client, db, name="c", block_ms=50)
    consumer.ensure_group()
    client.xadd(STREAM, {FIELD: "not json"})
    client.xadd(STREAM, {FIELD: '{"uid": "x"}'})  # JSON, but not an event
    client.xadd(STREAM, {"other": "field"})
    assert consumer.step() == 3
    assert consumer.bad == 3 and pending(client) == 0 and db.count_events() == 0
    db.close()


def test_resp3_clients_work_too(redis_server: RedisServer, client: redis.Redis, tmp_path: Path) -> None:
    resp3 = redis.Redis.from_url(redis_server.url, protocol=3)
    publisher = EventRecorder(Database(f"sqlite:///{tmp_path / 'n.db'}"), POLICY, ManualClock(),
                              Pseudonymiser(b"k"), sink=StreamPublisher(resp3))
    for n in range(20):
        publisher(ctx(n), BLOCK)
    publisher.close()
    publisher.db.close()
    db = Database(f"sqlite:///{tmp_path / 'central.db'}")
    consumer = StreamConsumer(resp3, db, name="c", block_ms=50)
    consumer.ensure_group()
    while consumer.step():
        pass
    assert_exactly_once(db, 20)
    resp3.close()
    db.close()
