"""Memory per tracked client in the memory state backend, at up to a million clients.

Each simulated person reads a page, an asset and two profiles through the full
engine under the default policy (keys: ip, subnet, account; windows and
distinct-record sets). Reported as resident-set growth divided by clients.
"""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from scrapeshield.clock import ManualClock
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import load_policy
from scrapeshield.state.memory import MemoryStore


def _rss() -> int:
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * 4096


def run(clients: int = 1_000_000) -> dict[str, Any]:
    clock = ManualClock()
    store = MemoryStore(idle_ttl=86400, max_keys=10 * clients)
    engine = Engine(load_policy(), store, clock)
    chrome = [("host", "127.0.0.1"), ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 "
              "(KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36"), ("accept-language", "en")]
    gc.collect()
    before = _rss()
    for client in range(clients):
        ip = f"10.{client & 255}.{client >> 8 & 255}.{(client >> 16) + 1}"
        headers = [*chrome, ("cookie", f"sid={client}.s")]
        for path in ("/", "/static/app.css", f"/u/user{client % 9973}", f"/api/v1/users/{client % 7919}"):
            clock.advance(0.0001)
            engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, headers))
    gc.collect()
    grown = _rss() - before
    return {
        "clients": clients,
        "tracked_keys": store.tracked_clients(),
        "rss_growth_mb": round(grown / 2**20, 1),
        "bytes_per_client": round(grown / clients),
    }


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000), indent=2))
