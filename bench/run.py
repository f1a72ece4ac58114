"""`make bench`: every benchmark, printed as figures and ratios from one run."""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import http, inprocess  # noqa: E402


def main() -> None:
    out: dict[str, object] = {}
    print("== in-process: full pipeline vs limits moving-window hit (100k clients) ==", flush=True)
    out["inprocess"] = inprocess.run()
    print(json.dumps(out["inprocess"], indent=2), flush=True)
    print("== HTTP: hello-world Starlette under uvicorn, 1 core; wrk on the other ==", flush=True)
    out["http"] = http.run()
    print(json.dumps(out["http"], indent=2), flush=True)
    target = Path(".bench")
    target.mkdir(exist_ok=True)
    (target / "results.json").write_text(json.dumps(out, indent=2))
    print(f"written to {target / 'results.json'}")


if __name__ == "__main__":
    main()
