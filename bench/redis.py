"""Shared state in Redis: full decisions per second against the physical limit and `limits`.

In one run, on one local Redis (started here unless $SCRAPESHIELD_BENCH_REDIS names one):

- the full pipeline (context → state → detectors → decision) with ``--state redis://``
  (ResilientStore over RedisStore), sync ``decide`` and asyncio ``adecide`` (16 at a time);
- a bare redis-py ``PING`` per request, sync and asyncio (16 at a time): one round trip
  through redis-py, the physical limit of a decision that shares state;
- the `limits` library's Redis storage with its moving window checking the same limits
  (one ``hit()`` per limit the request falls under; a distinct-records limit, which
  `limits` cannot express, is checked as a request limit of the same size);
- Redis round trips and commands per decision, from INFO commandstats (sync), and
  round trips per decision counted by the store (asyncio: concurrent decisions share
  them, four calls to a write);
- Redis memory per tracked client (INFO used_memory growth over N clients);
- where a sync decision's time goes, in CPU microseconds, which a loaded machine does
  not inflate as it does wall time: the client process (pipeline with Redis against the
  in-process pipeline; building the script call, decoding its reply, the memory write),
  the Redis server (INFO cpu) and its script alone (commandstats), and a bare round trip
  on a redis-py connection (no command layer) in wall time; and the in-process pipeline
  with such a bare round trip after each decision: a process that waits for a reply
  gives its core away, and on a loaded machine the wake-up and the caches refilled after
  it cost client CPU that neither the pipeline nor the round trip shows alone.

Rounds are interleaved so that machine noise hits every figure alike; medians reported.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio as aioredis
from limits import RateLimitItem, parse
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter

from bench.traffic import scopes
from scrapeshield.clock import ManualClock
from scrapeshield.context import ContextBuilder
from scrapeshield.policy.loader import load_policy
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.state.layout import decode, sizes
from scrapeshield.types import RequestContext

CONCURRENCY = 16


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_redis(workdir: str) -> tuple[str, subprocess.Popen[bytes] | None]:
    url = os.environ.get("SCRAPESHIELD_BENCH_REDIS")
    if url:
        return url, None
    port = _free_port()
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", workdir], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    client = redis.Redis(port=port)
    for _ in range(200):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.02)
    client.close()
    return f"redis://127.0.0.1:{port}/0", process


def _shield(url: str, tmp: str) -> tuple[Shield, ManualClock]:
    clock = ManualClock()
    shield = Shield(Settings.resolve(data_dir=tmp, state_url=url), clock)
    shield.start()
    return shield, clock


def pipeline_sync(url: str, tmp: str, requests: list[dict[str, Any]]) -> float:
    """Decisions per second; ``url`` "memory" gives the in-process baseline."""
    shield, clock = _shield(url, tmp)
    build, decide = shield.engine.contexts.from_asgi, shield.engine.decide
    start = time.perf_counter()
    for scope in requests:
        clock.advance(0.0005)
        decide(build(scope, clock.now()))
    rate = len(requests) / (time.perf_counter() - start)
    _no_fallback(shield)
    shield.close()
    return rate


def _no_fallback(shield: Shield) -> None:
    fallback = getattr(shield.store, "fallback_decisions", 0)
    if fallback:
        raise RuntimeError(f"{fallback} decisions came from the local fallback: Redis did not answer")


def pipeline_async(url: str, tmp: str, requests: list[dict[str, Any]]) -> tuple[float, float]:
    """Decisions per second, and round trips per decision (concurrent decisions share them)."""
    shield, clock = _shield(url, tmp)
    build, adecide = shield.engine.contexts.from_asgi, shield.engine.adecide

    async def worker(mine: list[dict[str, Any]]) -> None:
        for scope in mine:
            clock.advance(0.0005)
            await adecide(build(scope, clock.now()))

    async def main() -> float:
        start = time.perf_counter()
        await asyncio.gather(*(worker(requests[i::CONCURRENCY]) for i in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
        await shield.store.primary.aclose()  # type: ignore[attr-defined]
        return len(requests) / elapsed

    trips_before = shield.store.primary.round_trips  # type: ignore[attr-defined]
    rate = asyncio.run(main())
    trips = shield.store.primary.round_trips - trips_before  # type: ignore[attr-defined]
    _no_fallback(shield)
    shield.close()
    return rate, trips / len(requests)


def ping_sync(url: str, count: int) -> float:
    client = redis.Redis.from_url(url.split("?")[0])
    client.ping()
    start = time.perf_counter()
    for _ in range(count):
        client.ping()
    rate = count / (time.perf_counter() - start)
    client.close()
    return rate


def ping_async(url: str, count: int) -> float:
    async def main() -> float:
        client = aioredis.Redis.from_url(url)
        await client.ping()

        async def worker(n: int) -> None:
            for _ in range(n):
                await client.ping()

        start = time.perf_counter()
        await asyncio.gather(*(worker(count // CONCURRENCY) for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
        await client.aclose()
        return count // CONCURRENCY * CONCURRENCY / elapsed

    return asyncio.run(main())


def limits_plan(requests: list[dict[str, Any]]) -> list[list[tuple[RateLimitItem, str, str]]]:
    """Per request, one (item, key kind, key) per limit of the default policy it falls under."""
    policy = load_policy()
    contexts = ContextBuilder(policy)
    items = {kind: [parse(f"{lim.limit}/{int(lim.window)} seconds") for lim in limits]
             for kind, limits in policy.limits_by_key.items()}
    fields: dict[str, Callable[[RequestContext], str]] = {
        "ip": lambda c: c.ip, "subnet": lambda c: c.network, "account": lambda c: c.account,
        "session": lambda c: c.session, "token": lambda c: c.token, "fingerprint": lambda c: c.fingerprint,
        "client": lambda c: f"{c.ip}|{c.fingerprint}",  # as engine._client_key
    }
    plan = []
    for scope in requests:
        ctx = contexts.from_asgi(scope, 1_700_000_000.0)
        plan.append([(item, kind, fields[kind](ctx)) for kind in items if fields[kind](ctx)
                     for item in items[kind]])
    return plan


def limits_rate(url: str, plan: list[list[tuple[RateLimitItem, str, str]]]) -> tuple[float, float]:
    """Decisions per second, and hits per decision."""
    limiter = MovingWindowRateLimiter(RedisStorage(url.replace("/0", "/1")))
    hits = 0
    start = time.perf_counter()
    for checks in plan:
        for item, kind, key in checks:
            limiter.hit(item, kind, key)
        hits += len(checks)
    return len(plan) / (time.perf_counter() - start), hits / len(plan)


def commands_per_decision(url: str, tmp: str, requests: list[dict[str, Any]]) -> dict[str, float]:
    client = redis.Redis.from_url(url.split("?")[0])
    pipeline_sync(url, tmp, requests[:50])  # loads the script
    client.config_resetstat()
    pipeline_sync(url, tmp, requests)
    stats = client.info("commandstats")
    client.close()
    n = len(requests)
    calls = {k.removeprefix("cmdstat_"): v["calls"] for k, v in stats.items()}
    writes = calls.get("client|reply", 0)  # each memory write: CLIENT REPLY SKIP + SET
    top = calls.get("evalsha", 0) + 2 * writes + calls.get("config|resetstat", 0) + calls.get("info", 0)
    return {
        "round_trips_per_decision": round(calls.get("evalsha", 0) / n, 3),
        "memory_writes_per_decision": round(writes / n, 3),
        "redis_calls_inside_lua_per_decision": round((sum(calls.values()) - top) / n, 1),
        "lua_usec_per_decision": stats.get("cmdstat_evalsha", {}).get("usec_per_call", 0.0),
    }


def _server_cpu(client: redis.Redis) -> float:
    info = client.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def breakdown(url: str, tmp: str, requests: list[dict[str, Any]]) -> dict[str, float]:
    """Per sync decision, in microseconds: see the module's docstring."""
    admin = redis.Redis.from_url(url.split("?")[0])
    n = len(requests)
    out: dict[str, float] = {}
    ping: Any = admin.connection_pool.get_connection()
    ping.connect()
    for name, state in (("memory", "memory"), ("memory_plus_bare_ping", "memory"), ("redis", url)):
        shield, clock = _shield(state, tmp)
        build, decide = shield.engine.contexts.from_asgi, shield.engine.decide
        admin.flushall()
        admin.config_resetstat()
        cpu, server = time.process_time(), _server_cpu(admin)
        for scope in requests:
            clock.advance(0.0005)
            decide(build(scope, clock.now()))
            if name == "memory_plus_bare_ping":  # what waiting once per decision costs here
                ping.send_packed_command((b"*1\r\n$4\r\nPING\r\n",), check_health=False)
                ping.read_response()
        out[f"client_cpu_us_{name}_pipeline"] = (time.process_time() - cpu) / n * 1e6
        if name == "redis":
            out["server_cpu_us"] = (_server_cpu(admin) - server) / n * 1e6
            stats = admin.info("commandstats")
            out["server_script_us"] = float(stats["cmdstat_evalsha"]["usec_per_call"])
        _no_fallback(shield)
        shield.close()
    out["client_cpu_us_state_share"] = (
        out["client_cpu_us_redis_pipeline"] - out["client_cpu_us_memory_pipeline"])
    out.update(_client_parts(url, tmp, requests))
    start = time.perf_counter()
    for _ in range(n):
        ping.send_packed_command((b"*1\r\n$4\r\nPING\r\n",), check_health=False)
        ping.read_response()
    out["bare_round_trip_wall_us"] = (time.perf_counter() - start) / n * 1e6
    admin.connection_pool.release(ping)
    admin.close()
    return {k: round(v, 1) for k, v in out.items()}


def _client_parts(url: str, tmp: str, requests: list[dict[str, Any]]) -> dict[str, float]:
    """Client CPU of the store's own Python work, each part timed alone on the pipeline's calls."""
    shield, clock = _shield(url, tmp)
    store: Any = shield.store.primary  # type: ignore[attr-defined]
    calls: list[tuple[Any, str, float]] = []
    send = store.send  # (the engine's sync path: send, then receive)

    def recording(updates: Any, client: str, now: float) -> Any:
        calls.append((updates, client, now))
        return send(updates, client, now)

    store.send = recording
    for scope in requests[:2000]:
        clock.advance(0.0005)
        shield.engine.decide(shield.engine.contexts.from_asgi(scope, clock.now()))
    layout = store._layout  # noqa: SLF001 - the bench looks inside
    # Each part runs over 2,000 calls at once, keeping their results: a full collection of
    # the garbage collector, set off by that pile, would land on whichever part ran then
    # (a decode once read 65 us instead of 4). Serving hosts freeze their startup heap
    # (hosts/heap.py), which makes such a collection cheap; here collections are left out.
    gc.collect()
    gc.disable()
    start = time.process_time()
    commands = [layout.evalsha(u, layout.memory_key(c), now) for u, c, now in calls]
    build = time.process_time() - start
    link = store._take()  # noqa: SLF001
    replies = []
    for command in commands:
        link.send(command)
        replies.append(link.read())
    store._links.append(link)  # noqa: SLF001
    start = time.process_time()
    memories = [decode(r, sizes(u), now)[1] for r, (u, _, now) in zip(replies, calls, strict=True)]
    parse = time.process_time() - start
    start = time.process_time()
    for memory, (_, client, _) in zip(memories, calls, strict=True):
        store.keep(client, memory)
    keep = time.process_time() - start
    gc.enable()
    shield.close()
    n = len(calls)
    return {"client_cpu_us_build_call": build / n * 1e6, "client_cpu_us_decode_reply": parse / n * 1e6,
            "client_cpu_us_memory_write": keep / n * 1e6}


def memory_per_client(url: str, tmp: str, clients: int) -> dict[str, float]:
    client = redis.Redis.from_url(url.split("?")[0])
    client.flushall()
    before = client.info("memory")["used_memory"]
    shield, clock = _shield(url, tmp)
    engine = shield.engine
    chrome = [("host", "127.0.0.1"), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"), ("accept-language", "en")]
    for n in range(clients):  # as bench/memory.py: a page, an asset and two profiles each
        ip = f"10.{n & 255}.{n >> 8 & 255}.{(n >> 16) + 1}"
        headers = [*chrome, ("cookie", f"sid={n}.s")]
        for path in ("/", "/static/app.css", f"/u/user{n % 9973}", f"/api/v1/users/{n % 7919}"):
            clock.advance(0.0001)
            engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, headers))
    shield.close()
    grown = client.info("memory")["used_memory"] - before
    keys = client.dbsize()
    client.close()
    return {"clients": clients, "keys_per_client": round(keys / clients, 2),
            "bytes_per_client": round(grown / clients)}


def run(count: int = 20_000, limits_count: int = 2_000, rounds: int = 5,
        memory_clients: int = 20_000) -> dict[str, Any]:
    requests = scopes(count)
    plan = limits_plan(requests[:limits_count])
    rates: dict[str, list[float]] = {k: [] for k in (
        "memory", "sync", "ping_sync", "limits", "async", "ping_async")}
    with tempfile.TemporaryDirectory() as tmp:
        server, process = start_redis(tmp)
        # A generous time-out: a benchmark must never measure the local fallback instead.
        url = server + "?timeout=1"
        try:
            flush = redis.Redis.from_url(server)
            hits = 0.0
            async_trips: list[float] = []
            for _ in range(rounds):  # interleaved: the ratios are taken within each round
                flush.flushall()
                rates["memory"].append(pipeline_sync("memory", tmp, requests))
                rates["sync"].append(pipeline_sync(url, tmp, requests))
                rates["ping_sync"].append(ping_sync(server, count))
                rate, hits = limits_rate(server, plan)
                rates["limits"].append(rate)
                flush.flushall()
                rate, trips_async = pipeline_async(url, tmp, requests)
                rates["async"].append(rate)
                async_trips.append(trips_async)
                rates["ping_async"].append(ping_async(server, count))
            flush.flushall()
            trips = commands_per_decision(url, tmp, requests[:5000])
            parts = [breakdown(url, tmp, requests[:5000]) for _ in range(3)]
            memory = memory_per_client(url, tmp, memory_clients)
            flush.close()
        finally:
            if process is not None:
                process.terminate()
                process.wait()

    def ratio(a: str, b: str) -> float:
        return round(statistics.median(x / y for x, y in zip(rates[a], rates[b], strict=True)), 3)

    bound = [1 / (1 / p + 1 / m) for p, m in zip(rates["ping_sync"], rates["memory"], strict=True)]
    m = {k: round(statistics.median(v)) for k, v in rates.items()}
    return {
        "requests": count,
        "rounds": rounds,
        "pipeline_memory_state_decisions_per_s": m["memory"],
        "pipeline_sync_decisions_per_s": m["sync"],
        "ping_sync_per_s": m["ping_sync"],
        "ratio_pipeline_to_ping_sync": ratio("sync", "ping_sync"),
        "ratio_pipeline_to_ping_plus_inprocess_pipeline": round(statistics.median(
            s / b for s, b in zip(rates["sync"], bound, strict=True)), 3),
        f"pipeline_async_decisions_per_s_x{CONCURRENCY}": m["async"],
        f"ping_async_per_s_x{CONCURRENCY}": m["ping_async"],
        "ratio_pipeline_to_ping_async": ratio("async", "ping_async"),
        # Decisions waiting at the same moment share writes and waits (four calls to a write).
        f"round_trips_per_decision_async_x{CONCURRENCY}": round(statistics.median(async_trips), 3),
        "limits_decisions_per_s": m["limits"],
        "limits_hits_per_decision": round(hits, 2),
        "ratio_pipeline_sync_to_limits": ratio("sync", "limits"),
        **trips,
        # Medians of three runs, microseconds per sync decision.
        "breakdown": {k: round(statistics.median(p[k] for p in parts), 1) for k in parts[0]},
        "redis_memory": memory,
    }


if __name__ == "__main__":  # python -m bench.redis (as a script, this file would shadow redis-py)
    import json

    print(json.dumps(run(), indent=2))
