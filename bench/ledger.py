"""Cost of the evidence ledger: the window collector on the request path, and appends.

    python -m bench.ledger

Decisions per second of the in-process pipeline without and with the ledger's collector
(every decision summarised per client and window), on the same traffic in the same run;
then ledger appends per second on SQLite (batches of 500 entries, as the feed writes them).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from scrapeshield.clock import ManualClock  # noqa: E402
from scrapeshield.db.store import Database  # noqa: E402
from scrapeshield.engine import Engine  # noqa: E402
from scrapeshield.events import Pseudonymiser  # noqa: E402
from scrapeshield.legal.collector import WindowCollector  # noqa: E402
from scrapeshield.legal.ledger import Ledger, NewEntry  # noqa: E402
from scrapeshield.policy.loader import load_policy  # noqa: E402
from scrapeshield.state.memory import MemoryStore  # noqa: E402

UA = [("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                     "Chrome/126.0.0.0 Safari/537.36"), ("accept", "text/html")]
N = 60_000


def decisions_per_second(with_collector: bool) -> float:
    clock = ManualClock(1_793_700_000.0)
    engine = Engine(load_policy(None), MemoryStore(), clock)
    if with_collector:
        engine.listeners.append(WindowCollector(Pseudonymiser(b"k" * 32), window=300))
    # 3,000 clients, 20 requests each, interleaved (a busy site's mix, over 10 minutes)
    contexts = [engine.contexts.build(clock.now() + i * 0.01, f"10.{i % 3000 // 250}.{i % 250}.9",
                                      "GET", f"/api/v1/users/{i % 5000 + 1}", UA) for i in range(N)]
    start = time.perf_counter()
    for ctx in contexts:
        engine.decide(ctx)
    return N / (time.perf_counter() - start)


def appends_per_second() -> float:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite:///{tmp}/ledger.db")
        ledger = Ledger(db)
        batches = 20
        start = time.perf_counter()
        for b in range(batches):
            ledger.append([NewEntry("window", f"p:{b}-{i}", {"requests": i, "records_taken": ["user:1"] * 5})
                           for i in range(500)], 1_793_700_000.0 + b)
        rate = batches * 500 / (time.perf_counter() - start)
        db.close()
        return rate


def run() -> dict[str, float]:
    bare, fed = [], []
    for _ in range(5):  # interleaved: this machine is shared, its speed drifts
        bare.append(decisions_per_second(False))
        fed.append(decisions_per_second(True))
    return {"decisions_per_s_without_ledger": round(max(bare)),
            "decisions_per_s_with_ledger": round(max(fed)),
            "ratio_with_over_without": round(max(fed) / max(bare), 3),
            "ledger_appends_per_s_sqlite": round(appends_per_second())}


if __name__ == "__main__":
    print(json.dumps(run(), indent=2))
