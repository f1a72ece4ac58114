"""`make bench`: every benchmark, printed as figures and ratios from one run.

Each figure comes with its baseline measured in the same run (this machine is
shared and noisy): compare the ratios, not the absolute numbers.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Run as `python -m bench.run` from the repository root (a plain `python bench/run.py`
# would put bench/ first on the path, where bench/http.py shadows the standard library).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import console, http, inprocess, ledger, memory, nginx, quality, redis, replay, wsgi  # noqa: E402
from scrapeshield.clock import SystemClock  # noqa: E402

BENCHES: list[tuple[str, str, Callable[[], dict[str, Any]]]] = [
    ("inprocess", "in-process: full pipeline vs limits' moving-window hit (100k clients)", inprocess.run),
    ("http", "HTTP: hello-world Starlette under uvicorn (1 core), wrk on the other core", http.run),
    ("wsgi", "HTTP: hello-world Flask under gunicorn (1 sync worker), bare vs shielded", wsgi.run),
    ("nginx", "nginx alone vs nginx + auth_request + decision service (Python upstream)", nginx.run),
    ("redis", "Redis state: full pipeline vs a bare PING vs limits' Redis storage", redis.run),
    ("memory", "memory: bytes per tracked client at one million clients", memory.run),
    ("replay", "log replay: lines/s on one core, batch vs line-at-a-time vs GoAccess vs fail2ban-regex",
     replay.run),
    ("quality", "detection quality: a simulated day, no protection vs per-IP limits vs policy", quality.run),
    ("ledger", "evidence ledger: collector cost per request vs the pipeline; appends; export and verify",
     ledger.run),
    ("console", "console pages with one million stored events (SQLite), budget 300 ms each", console.run),
]


def main() -> None:
    wanted = set(sys.argv[1:])
    out: dict[str, object] = {}
    for name, title, bench in BENCHES:
        if wanted and name not in wanted:
            continue
        print(f"== {title} ==", flush=True)
        out[name] = {"measured_at": _now_iso()} | bench()
        print(json.dumps(out[name], indent=2), flush=True)
    path = Path(".bench") / "results.json"
    path.parent.mkdir(exist_ok=True)
    # Merge: a run of one bench must not erase the others' latest figures.
    path.write_text(json.dumps(_previous(path) | out, indent=2))
    print(f"written to {path}")


def _now_iso() -> str:
    return datetime.fromtimestamp(SystemClock().now(), UTC).isoformat(timespec="seconds")


def _previous(path: Path) -> dict[str, object]:
    """The results of earlier runs, each entry stamped with when it was measured."""
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return old if isinstance(old, dict) else {}


if __name__ == "__main__":
    main()
