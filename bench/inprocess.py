"""In-process speed: full decisions per second vs the `limits` library's moving-window hit()."""

from __future__ import annotations

import gc
import statistics
import tempfile
import time
from typing import Any

from limits import RateLimitItemPerMinute
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from bench.traffic import scopes
from scrapeshield.clock import ManualClock
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings


def limits_rate(keys: list[str]) -> float:
    limiter = MovingWindowRateLimiter(MemoryStorage())
    item = RateLimitItemPerMinute(1_000_000)
    start = time.perf_counter()
    for key in keys:
        limiter.hit(item, key)
    return len(keys) / (time.perf_counter() - start)


def pipeline_rate(
    requests: list[dict[str, Any]], shield: Shield, clock: ManualClock
) -> tuple[float, list[float]]:
    engine = shield.engine
    build = engine.contexts.from_asgi
    decide = engine.decide
    latencies: list[float] = []
    perf = time.perf_counter
    start = perf()
    for i, scope in enumerate(requests):
        clock.advance(0.0005)
        if i % 50 == 0:
            t0 = perf()
            decide(build(scope, clock.now()))
            latencies.append(perf() - t0)
        else:
            decide(build(scope, clock.now()))
    return len(requests) / (perf() - start), latencies


def run(count: int = 200_000, rounds: int = 3) -> dict[str, Any]:
    requests = scopes(count)
    # The 200,000 prepared requests are the load generator's, not the shield's: a server holds
    # a request only while it answers it. Frozen, the garbage collector does not walk them at
    # every full collection (which made a decision look ~4 µs dearer than it is).
    gc.collect()
    gc.freeze()
    keys = [f"{s['client'][0]}" for s in requests]  # type: ignore[index]
    results: dict[str, list[float]] = {"pipeline": [], "limits": []}
    lat: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(rounds):  # interleaved so that machine noise hits both alike
            clock = ManualClock()
            shield = Shield(Settings.resolve(data_dir=tmp), clock)
            shield.start()
            rate, latencies = pipeline_rate(requests, shield, clock)
            shield.close()
            results["pipeline"].append(rate)
            lat += latencies
            results["limits"].append(limits_rate(keys))
    gc.unfreeze()
    pipeline = statistics.median(results["pipeline"])
    limit = statistics.median(results["limits"])
    lat.sort()
    return {
        "clients": 100_000,
        "requests": count,
        "pipeline_decisions_per_s": round(pipeline),
        "limits_moving_window_hits_per_s": round(limit),
        "ratio_pipeline_to_limits": round(pipeline / limit, 3),
        "cost_in_limits_hits": round(limit / pipeline, 2),
        "pipeline_p50_us": round(lat[len(lat) // 2] * 1e6, 1),
        "pipeline_p99_us": round(lat[int(len(lat) * 0.99)] * 1e6, 1),
    }
