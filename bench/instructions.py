"""A fixed run of decisions to count instructions with callgrind (load-independent figures).

    valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect=CPyPy_engine___Engine___decide \\
        --toggle-collect=CPyPy_context___ContextBuilder___from_asgi \\
        python -m bench.instructions MIX WARM COUNT [listeners]

MIX: ``http`` (bench/http_parts.py's requests: wrk-clients.lua's 100k clients behind a trusted
proxy, bench-policy.yaml, listeners off unless asked) or ``inprocess`` (bench/traffic.py's mix,
the default policy, as bench/inprocess.py runs it: pass ``listeners``). With the compiled build,
the toggles count the context stage and ``Engine.decide`` of all WARM + COUNT decisions (the
warm-up ones included): divide the total by WARM + COUNT. ``callgrind_annotate --inclusive=yes``
then shows each function's share.
"""

from __future__ import annotations

import gc
import sys
import tempfile

from bench import apps, http_parts
from bench.traffic import scopes
from scrapeshield.clock import ManualClock
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings


def main(mix: str, warm: int, count: int, listeners: bool) -> None:
    clock = ManualClock()
    with tempfile.TemporaryDirectory() as tmp:
        if mix == "http":
            requests = [http_parts.scope(i) for i in range(1, warm + count + 1)]
            shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(apps.POLICY)), clock)
        else:
            requests = scopes(warm + count)
            shield = Shield(Settings.resolve(data_dir=tmp), clock)
        engine = shield.engine
        if not listeners:
            engine.listeners = []
        gc.collect()
        gc.freeze()  # the prepared requests are the load generator's
        build, decide = engine.contexts.from_asgi, engine.decide
        for scope in requests:
            clock.advance(0.0005)
            decide(build(scope, clock.now()))
        shield.close()
        gc.unfreeze()


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) < 3 or args[0] not in ("http", "inprocess"):
        sys.exit(__doc__)
    main(args[0], int(args[1]), int(args[2]), args[3:] == ["listeners"])
