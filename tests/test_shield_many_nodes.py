"""The Shield as `--state redis://… --db postgresql://…` wires it: two nodes' events reach the
shared database exactly once through the Redis stream, with one shared counter state."""

from __future__ import annotations

import time
from pathlib import Path

from pg_server import PostgresServer, pg_server  # noqa: F401 - the fixture
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from scrapeshield.db.store import Database
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.types import Action

CURL = [("user-agent", "curl/8.5.0")]


def test_two_nodes_share_limits_and_deliver_every_event_once(
    tmp_path: Path,
    pg_server: PostgresServer,  # noqa: F811
    redis_server: RedisServer,  # noqa: F811
) -> None:
    db_url = pg_server.create_database("nodes")
    secret = None
    nodes = []
    for name in ("a", "b"):
        data = tmp_path / name
        data.mkdir()
        if secret is None:
            secret = Settings.resolve(data_dir=str(data)).master_key()
        else:
            (data / "secret.key").write_bytes(secret)  # nodes share the platform's key
        shield = Shield(Settings.resolve(data_dir=str(data), db_url=db_url, state_url=redis_server.url))
        assert shield.consumer is not None, "redis state + shared database: events go by stream"
        shield.start()
        nodes.append(shield)
    try:
        actions = []
        for i in range(40):  # one client alternating between the nodes
            node = nodes[i % 2]
            ctx = node.engine.contexts.build(
                time.time(), "203.0.113.50", "GET", f"/api/v1/users/{i + 1}", CURL
            )
            actions.append(node.engine.decide(ctx).action)
        assert Action.ALLOW not in actions  # contained on both nodes alike
        watcher = Database(db_url)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and watcher.count_events() < 40:
            time.sleep(0.2)
        watcher.close()
    finally:
        for shield in nodes:
            shield.close()
    db = Database(db_url)
    events = db.recent_events(limit=100)
    assert len(events) == 40 and len({e["uid"] for e in events}) == 40
    # Both nodes pseudonymise the client the same way, so the database sees one client.
    assert len({e["client"] for e in events}) == 1
    db.close()
