"""The window collector counts requests in batches: every request noted is counted once, also
while other threads note requests and the ledger job drains windows at the same time."""

from __future__ import annotations

import threading

from scrapeshield.events import Pseudonymiser
from scrapeshield.legal.collector import FOLD_AT, WindowCollector
from scrapeshield.types import Action, Decision, RequestContext

ALLOW = Decision(Action.ALLOW, 0.0, (), "")
CHALLENGE = Decision(Action.CHALLENGE, 50.0, ("fleet",), "score")


def ctx(n: int) -> RequestContext:
    return RequestContext(
        ts=1_700_000_000.0 + n % 1000, ip=f"198.51.100.{n % 97}", network="198.51.100.0/24", scheme="http",
        method="GET", path=f"/u/{n}", route="profile", record=f"user:{n % 500}", headers=(),
        user_agent=f"ua{n % 3}", account="", session="", token="", fingerprint="f", tls_fingerprint="",
        referer="", pass_cookie="", is_asset=False, cost=1, host="", client_hints=None, header_names=())


def test_requests_noted_by_several_threads_while_draining_are_each_counted_once() -> None:
    collector = WindowCollector(Pseudonymiser(b"k" * 32), window=60.0)
    per_thread, threads = 7 * FOLD_AT + 13, 4
    entries = []
    done = threading.Event()

    def note(offset: int) -> None:
        for n in range(offset, offset + per_thread):
            collector(ctx(n), CHALLENGE if n % 3 == 0 else ALLOW)

    def drain() -> None:
        while not done.is_set():
            entries.extend(collector.drain(1_700_000_000.0 + 500))  # the first windows close
            done.wait(0.001)

    drainer = threading.Thread(target=drain)
    drainer.start()
    noters = [threading.Thread(target=note, args=(i * per_thread,)) for i in range(threads)]
    for thread in noters:
        thread.start()
    for thread in noters:
        thread.join(timeout=60)
    done.set()
    drainer.join(timeout=60)
    entries.extend(collector.drain(None))
    totals = [e.body for e in entries if e.kind == "totals"]
    assert sum(t["requests"] for t in totals) == per_thread * threads
    challenged = sum(t["actions"].get("challenge", 0) for t in totals)
    assert challenged == len([n for n in range(per_thread * threads) if n % 3 == 0])
    windows = [e.body for e in entries if e.kind == "window"]
    assert sum(w["requests"] for w in windows) == per_thread * threads, "every client's request"
