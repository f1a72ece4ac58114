"""A fixed run of the WSGI middleware around bench/wsgi.py's Flask app, to count instructions.

    valgrind --tool=callgrind --collect-atstart=no \\
        --toggle-collect='CPyPy_wsgi___ScrapeshieldWSGI_____call__' \\
        python -m bench.wsgicount WARM COUNT

The bench's requests (wrk-clients.lua's 100k clients behind a trusted proxy, bench-policy.yaml,
bench/hostcost.py's environs in gunicorn's key order) handed to ScrapeshieldWSGI in-process as
a sync worker does: call, iterate the answer, close it. The event writer is not started (its
thread is not counted; the events wait in its queue). A manual clock advanced 0.5 ms per
request makes every run the same. With the compiled build the toggle counts every call into
the middleware, the Flask app it calls included, warm-up included: divide the total by
WARM + COUNT. ``callgrind_annotate --inclusive=yes`` then shows the parts: the engine's
``CPyDef_engine___Engine___decide``, the context's ``ContextBuilder___from_environ``, the
replies' ``decision_reply``, and the app (``--tree=calling``: the middleware's call into
``PyObject_Vectorcall``). The host's own part is what is left. ``bare`` runs the app alone
(nothing toggled: a check that the statuses are the app's). Without valgrind, the thread CPU
time per request of the COUNT requests (the harness's loop and the app included) is a figure
to compare between builds, run after run, on a machine whose load does not vary much; the
answers' digest (status lines and headers, challenge pages' cookies and links included) says
whether two builds answered alike.
"""

from __future__ import annotations

import gc
import hashlib
import sys
import tempfile
import time
from typing import Any

from bench.hostcost import POLICY, _environ
from bench.wsgi import _app
from scrapeshield.clock import ManualClock
from scrapeshield.hosts.wsgi import ScrapeshieldWSGI
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings


def main(warm: int, count: int, bare: bool = False) -> dict[str, Any]:
    clock = ManualClock()
    statuses: dict[str, int] = {}
    got: list[str] = []
    answers = hashlib.blake2b(digest_size=8)  # every answer's status line and headers, in order

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        got.append(status)
        answers.update(repr((status, headers)).encode())
        return None

    with tempfile.TemporaryDirectory(prefix="wsgicount-") as tmp:
        shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(POLICY)), clock)
        app: Any = _app().wsgi_app if bare else ScrapeshieldWSGI(_app().wsgi_app, shield)
        environs = [_environ(i) for i in range(warm + count)]
        gc.collect()
        gc.freeze()  # the prepared environs are the server's
        began = 0.0
        for i, environ in enumerate(environs):
            if i == warm:
                statuses.clear()
                began = time.thread_time()
            clock.advance(0.0005)
            result = app(environ, start_response)
            for _ in result:
                pass
            close = getattr(result, "close", None)
            if close is not None:
                close()
            status = got.pop()[:3]
            statuses[status] = statuses.get(status, 0) + 1
        spent = time.thread_time() - began
        shield.close()
        gc.unfreeze()
    return {"requests": count, "statuses": dict(sorted(statuses.items())),
            "answers_digest": answers.hexdigest(),
            "thread_cpu_us_per_request": round(spent / count * 1e6, 2)}


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) not in (2, 3) or args[2:] not in ([], ["bare"]):
        sys.exit(__doc__)
    print(main(int(args[0]), int(args[1]), args[2:] == ["bare"]))
