"""Redis going away and coming back: the circuit breaker, the fail mode, and a node under load.

The first tests drive ``ResilientStore`` over a real Redis that is killed and restarted,
on a manual clock. The load tests run ``scrapeshield demo --state redis://…`` and kill,
restart, freeze (SIGSTOP) and thaw Redis during a bounded run of paced requests from a
few simulated clients (threads, each with its own loopback address).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
import yaml
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture
from servers import Server, chrome_headers, start_cli

from scrapeshield.clock import ManualClock
from scrapeshield.errors import StateError
from scrapeshield.policy.loader import default_policy_text
from scrapeshield.signals.catalog import SIGNALS
from scrapeshield.state.base import KeyUpdate
from scrapeshield.state.memory import MemoryStore
from scrapeshield.state.redis import RedisStore
from scrapeshield.state.resilient import ResilientStore

pytestmark = pytest.mark.timeout(120)
SPEC = ((60.0, False, 5),)
BROWSER = {k: v for k, v in chrome_headers("").items() if k != "host"}


def hit(store: ResilientStore, now: float, key: str = "ip:a") -> float:
    updates: list[KeyUpdate] = [(key, SPEC, (1,), "")]
    usages, memory = store.update(updates, key, now)
    store.keep(key, memory)
    return usages[0][0]


@pytest.fixture
def server(redis_server: RedisServer) -> Iterator[RedisServer]:  # noqa: F811
    redis_server.start()
    redis_server.client().flushall()
    yield redis_server
    redis_server.start()


def test_breaker_opens_falls_back_and_recovers(server: RedisServer, caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(1000.0)
    primary = RedisStore(server.url, timeout=0.05)
    store = ResilientStore(primary, MemoryStore(), clock=clock, failures=3, reset_after=5)
    caplog.set_level(logging.INFO, "scrapeshield.state")
    try:
        assert [hit(store, 1000.0) for _ in range(3)] == [1, 2, 3]
        server.stop()
        # Fail open: every request is still answered, from local counts that start afresh.
        assert [hit(store, 1001.0) for _ in range(10)] == list(range(1, 11))
        assert (store.circuit, store.failures, store.fallback_decisions) == ("open", 3, 10)
        clock.advance(5)
        assert hit(store, 1006.0) == 11  # the probe fails: open again, answered locally
        assert (store.circuit, store.failures) == ("open", 4)
        server.start()  # an empty Redis, as after a crash without persistence
        assert hit(store, 1007.0) == 12, "no probe before reset_after has passed"
        clock.advance(5)
        assert hit(store, 1011.0) == 1, "the probe reaches Redis: counts come from it again"
        assert store.circuit == "closed" and hit(store, 1011.0) == 2
        assert server.client().exists("ss:{ip:a}:w")
    finally:
        primary.close()
    moves = [r.getMessage() for r in caplog.records if r.name == "scrapeshield.state"]
    assert len(moves) == 5, moves  # open, half-open, open, half-open, closed: once each
    assert "unavailable" in moves[0] and "recovered" in moves[-1]


def test_fail_closed_raises_and_asyncio_path_degrades_alike(server: RedisServer) -> None:
    clock = ManualClock(1000.0)
    mode = ["closed"]
    primary = RedisStore(server.url, timeout=0.05)
    store = ResilientStore(primary, clock=clock, fail_mode=lambda: mode[0], failures=1, reset_after=5)
    try:
        server.stop()
        with pytest.raises(StateError):
            hit(store, 1000.0)
        with pytest.raises(StateError):
            hit(store, 1000.0)  # circuit open: refused without trying Redis
        assert (store.failures, store.refused_decisions) == (1, 2)
        mode[0] = "open"  # a policy reload switches the fail mode at once

        async def calls() -> list[float]:
            got = [(await store.aupdate([("ip:a", SPEC, (1,), "")], "ip:a", 1000.0))[0][0][0]
                   for _ in range(3)]
            await primary.aclose()
            return got

        assert asyncio.run(calls()) == [1, 2, 3]
        assert store.fallback_decisions == 3
    finally:
        primary.close()


def test_split_calls_take_the_breaker_and_the_fail_mode_as_update_does(server: RedisServer) -> None:
    """``send``/``receive`` (the engine's path for a networked store): a call sent to a Redis
    that never answers (frozen) times out and fails over to the fallback, as do calls the
    open circuit keeps from Redis; fail closed refuses them."""
    clock = ManualClock(1000.0)
    mode = ["open"]
    primary = RedisStore(server.url, timeout=0.5)
    store = ResilientStore(
        primary, MemoryStore(), clock=clock, fail_mode=lambda: mode[0], failures=2, reset_after=5)
    updates: list[KeyUpdate] = [("ip:a", SPEC, (1,), "")]
    assert server.process is not None
    try:
        assert [store.receive(store.send(updates, "ip:a", 1000.0))[0][0][0] for _ in range(3)] == [1, 2, 3]
        os.kill(server.process.pid, signal.SIGSTOP)  # the calls leave; no reply comes
        try:
            assert store.receive(store.send(updates, "ip:a", 1000.0))[0][0][0] == 1, "the local fallback"
            assert store.receive(store.send(updates, "ip:a", 1000.0))[0][0][0] == 2
            assert (store.circuit, store.failures, store.fallback_decisions) == ("open", 2, 2)
            mode[0] = "closed"
            with pytest.raises(StateError):
                store.receive(store.send(updates, "ip:a", 1000.0))
            assert store.failures == 2 and store.refused_decisions == 1  # the open circuit skips Redis
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
        mode[0] = "open"
        clock.advance(5)
        # The probe reaches Redis: its count (3, and the frozen calls it may have run since),
        # not the fallback's (which would say 3).
        assert store.receive(store.send(updates, "ip:a", 1005.0))[0][0][0] >= 4
        assert store.circuit == "closed"
    finally:
        primary.close()


# -- a node under load ----------------------------------------------------------------------


@dataclass
class Reply:
    at: float  # seconds since the run began
    client: str
    status: int
    action: str
    latency: float


def node(redis: RedisServer, tmp: pytest.TempPathFactory, fail_mode: str) -> Server:
    policy = tmp.mktemp("policy") / "policy.yaml"
    # About the state's fail modes: the behaviour and campaign detectors are weighed 0 so that
    # the limits alone (local ones during the outage) decide the fast client.
    data = yaml.safe_load(default_policy_text())
    data["fail_mode"] = fail_mode
    data["weights"] = {n: 0 for n in SIGNALS if n.startswith(("behaviour.", "campaign.", "enumeration."))}
    policy.write_text(yaml.safe_dump(data))
    url = f"{redis.url}?timeout=0.05&failures=3&reset=0.5"
    return start_cli(["demo", "--users", "2000", "--seed", "7", "--policy", str(policy), "--state", url],
                     tmp.mktemp(f"fault-{fail_mode}"))


def load(server: Server, total: int, seconds: float, events: list[tuple[float, str]],
         redis: RedisServer) -> tuple[list[Reply], list[tuple[float, float, float]]]:
    """``total`` requests paced over ``seconds``: 100 people (each its own /24, reading the
    feed, assets and profiles well under every limit) from 5 threads, and one fast client
    reading random profiles at 60/s (over the 10 s burst limit within a second). At each
    (time, what) of ``events`` Redis is killed, started, frozen or thawed. /metrics is
    sampled as (time, backend up, fallback decisions)."""
    replies: list[Reply] = []
    samples: list[tuple[float, float, float]] = []
    fast = int(60 * seconds)
    per_thread = (total - fast) // 5
    began = time.monotonic()
    done = threading.Event()

    def browse(sources: list[str], count: int, greedy: bool) -> None:
        rng = random.Random(sources[0])
        # People's browsers name the site's page they came from (the shield's campaign
        # counters tell people from a proxy pool's bare reads by that).
        headers = {**BROWSER, "referer": f"{server.url}/"}
        clients = {s: httpx.Client(base_url=server.url, headers=headers, timeout=10,  # plain HTTP:
                                   transport=httpx.HTTPTransport(local_address=s, verify=False))
                   for s in sources}  # no TLS context to build, so every client starts at once
        try:
            for n in range(count):
                source = sources[n % len(sources)]
                first = n < len(sources)
                profile = f"/api/v1/users/{rng.randrange(1, 2000)}"
                path = ("/static/app.css" if first else profile if greedy
                        else rng.choice(["/", "/static/app.js", profile]))
                started = time.monotonic()
                response = clients[source].get(path)
                replies.append(Reply(started - began, source, response.status_code,
                                     response.headers.get("x-scrapeshield-action", ""),
                                     time.monotonic() - started))
                time.sleep(max(0.0, began + (n + 1) * seconds / count - time.monotonic()))
        finally:
            for c in clients.values():
                c.close()

    def watch() -> None:
        with server.admin() as admin:
            while not done.is_set():
                text = admin.get("/metrics").text
                up = re.search(r"^scrapeshield_state_backend_up (\S+)", text, re.M)
                fallback = re.search(r"^scrapeshield_state_fallback_decisions_total (\S+)", text, re.M)
                assert up and fallback
                samples.append((time.monotonic() - began, float(up.group(1)), float(fallback.group(1))))
                time.sleep(0.05)

    people = [[f"127.30.{t * 20 + i}.1" for i in range(20)] for t in range(5)]
    threads = [threading.Thread(target=browse, args=(ips, per_thread, False)) for ips in people]
    threads.append(threading.Thread(target=browse, args=(["127.31.0.1"], fast, True)))
    watcher = threading.Thread(target=watch)
    for t in [*threads, watcher]:
        t.start()
    for at, what in events:
        time.sleep(max(0.0, began + at - time.monotonic()))
        assert redis.process is not None
        if what == "kill":
            redis.stop()
        elif what == "start":
            redis.start()
        else:
            os.kill(redis.process.pid, signal.SIGSTOP if what == "freeze" else signal.SIGCONT)
    for t in threads:
        t.join(timeout=60)
    done.set()
    watcher.join(timeout=10)
    return replies, samples


def recover(shield: Server, source: str = "127.30.0.1", seconds: float = 20.0) -> tuple[float, int]:
    """After the load: a person's requests go on (the circuit probes Redis on a request) until
    /metrics shows the backend up again; the (backend up, fallback decisions) then and the last
    reply's status. Bounded, so a shield that never recovers fails the test instead of hanging;
    the load's own last seconds may end before a loaded CI machine has probed."""
    deadline = time.monotonic() + seconds
    with httpx.Client(base_url=shield.url, headers={**BROWSER, "referer": f"{shield.url}/"},
                      transport=httpx.HTTPTransport(local_address=source), timeout=5) as person, \
            shield.admin() as admin:
        while True:
            status = person.get("/static/app.css").status_code
            up = re.search(r"^scrapeshield_state_backend_up (\S+)", admin.get("/metrics").text, re.M)
            assert up is not None
            if float(up.group(1)) == 1 or time.monotonic() > deadline:
                return float(up.group(1)), status
            time.sleep(0.1)


@pytest.fixture
def tmp(tmp_path_factory: pytest.TempPathFactory) -> pytest.TempPathFactory:
    return tmp_path_factory


def test_fail_open_under_load_kill_restart_freeze(server: RedisServer, tmp: pytest.TempPathFactory) -> None:
    shield = node(server, tmp, "open")
    try:
        events = [(1.0, "kill"), (2.5, "start"), (3.5, "freeze"), (4.5, "thaw")]
        replies, samples = load(shield, 2000, 6.0, events, server)
        up_after, _ = recover(shield)
        log = shield.log()
        with shield.admin() as admin:
            metrics = admin.get("/metrics").text
    finally:
        shield.stop()
    assert len(replies) == 2000
    assert not [r for r in replies if r.status >= 500], "no 5xx, ever"
    worst = max(r.latency for r in replies)
    assert worst < 0.5, f"no request waits long on Redis (worst {worst:.3f}s; time-out 0.05s)"
    outage = [r for r in replies if 1.1 < r.at < 2.4]
    people = [r for r in outage if r.client.startswith("127.30.")]
    assert people and all(r.status == 200 for r in people), "fail open: people are served"
    fast = [r.action for r in outage if r.client.startswith("127.31.")]
    assert "" in fast and "throttle" in fast, "a fresh local budget, then the local burst limit"
    assert any(up == 0 for _, up, _ in samples), "/metrics shows the outage"
    assert up_after == 1, "and the recovery, without a restart"
    assert samples[-1][2] > 0
    assert re.search(r"^scrapeshield_state_circuit_transitions_total ([4-9]|\d\d+)\.0$", metrics, re.M)
    # Decisions come from Redis again: the people's keys are back in the restarted server.
    assert server.client().exists("ss:{ip:127.30.0.1}:w", "ss:{ip:127.30.99.1}:w") == 2
    unavailable = log.count("state backend unavailable")
    assert 1 <= unavailable <= 12, "logged per transition, not per request"
    assert log.count("state backend recovered") >= 2


def test_fail_closed_under_load(server: RedisServer, tmp: pytest.TempPathFactory) -> None:
    shield = node(server, tmp, "closed")
    try:
        replies, samples = load(shield, 600, 3.0, [(1.0, "kill"), (2.0, "start")], server)
        up_after, status_after = recover(shield)
    finally:
        shield.stop()
    assert not [r for r in replies if r.status >= 500]
    assert max(r.latency for r in replies) < 0.5
    people = [r for r in replies if r.client.startswith("127.30.")]
    during = [r for r in people if 1.1 < r.at < 1.9]
    assert during and all(r.status == 403 and r.action == "block" for r in during), "fail closed"
    assert any(up == 0 for _, up, _ in samples)
    assert up_after == 1 and status_after == 200, "served again after recovery, no restart"
