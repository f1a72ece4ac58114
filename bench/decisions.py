"""Recorded decisions for fixed request mixes: proof that a speed change kept every decision.

    python -m bench.decisions OUT.jsonl     # writes every decision, prints one digest per mix
    python -m bench.decisions OUT.jsonl redis://127.0.0.1:6379/9   # the same with Redis state

Run it before and after a change to the request path (pure or compiled) and compare the
digests (or diff the files): same actions, scores, reasons, rules, retry-afters and clients.
The mixes cover what the in-process benchmark runs (100k clients), the mix tests/test_native.py
compares, a few hot clients that breach request and distinct-record limits, and a small
memory store that turns its generations over many times (eviction), with 404s reported.
With a Redis URL (a database of its own: it is flushed before each mix) the mixes run with
that state backend instead, except the memory store's eviction mix.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import redis

from bench.traffic import scopes
from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import load_policy
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Decision

# (name, requests, clients, seed, seconds between requests, memory store (idle_ttl, max_keys) or None)
MIXES = (
    ("bench", 60_000, 100_000, 1, 0.0005, None),
    ("native", 6_000, 500, 7, 0.01, None),
    ("hot", 20_000, 20, 3, 0.005, None),
    ("turnover", 30_000, 3_000, 5, 0.01, (30.0, 2_000)),
)


def _row(d: Decision) -> str:
    return json.dumps([d.action.value, d.score, list(d.reasons), d.rule, d.retry_after, d.client])


def decisions(count: int, clients: int, seed: int, step: float,
              store: tuple[float, int] | None, data: Path, state: str = "memory") -> Iterator[str]:
    clock = ManualClock()
    shield: Shield | None = None
    if store is None:
        shield = Shield(Settings.resolve(data_dir=data, state_url=state), clock)
        engine = shield.engine
    else:
        engine = Engine(load_policy(), MemoryStore(idle_ttl=store[0], max_keys=store[1]), clock)
    for i, scope in enumerate(scopes(count, clients=clients, seed=seed)):
        clock.advance(step)
        ctx = engine.contexts.from_asgi(scope, clock.now())
        yield _row(engine.decide(ctx))
        if i % 7 == 0:
            engine.observe(ctx, 404)
    if shield is not None:
        if getattr(shield.store, "fallback_decisions", 0):  # the record must be Redis's alone
            raise RuntimeError("decisions came from the local fallback: Redis did not answer")
        shield.close()


def main(out: Path, state: str = "memory") -> None:
    with out.open("w") as f, tempfile.TemporaryDirectory() as tmp:
        for name, count, clients, seed, step, store in MIXES:
            if state != "memory":
                if store is not None:
                    continue  # the memory store's own mix
                redis.Redis.from_url(state.split("?")[0]).flushdb()  # (?timeout= is the store's)
            digest = hashlib.sha256()
            for row in decisions(count, clients, seed, step, store, Path(tmp) / name, state):
                f.write(f"{name}\t{row}\n")
                digest.update(row.encode())
            print(name, count, digest.hexdigest()[:16], flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else ".bench/decisions.jsonl"),
         sys.argv[2] if len(sys.argv) > 2 else "memory")
