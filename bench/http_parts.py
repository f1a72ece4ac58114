"""Where the shield's time goes around the engine, in-process, with the HTTP bench's request mix.

The same requests as wrk-clients.lua (100,000 clients behind a trusted proxy, one Chrome
build, every third request a profile read), as ASGI scopes. Parts are timed one at a time
in CPU time: context building, the engine's decision (listeners off), each decision
listener, the event writer (per event written), and the replies of non-allow decisions;
then the whole hello-world app through the middleware against the bare app, on one thread
of an asyncio loop (no HTTP server), with the CPU of the shield's own threads apart.
"""

from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from bench import apps
from scrapeshield.actions.responses import decision_reply
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.types import Action

UA = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
      "Chrome/126.0.0.0 Safari/537.36")


def scope(counter: int) -> dict[str, Any]:
    """Request number ``counter`` of wrk-clients.lua, as uvicorn hands it to the app."""
    client = (counter * 7919) % 100000
    ip = f"10.{client % 256}.{(client // 256) % 256}.{client // 65536 + 1}"
    path = f"/u/user{counter % 10000}" if counter % 3 == 0 else "/"
    headers = [(b"host", b"127.0.0.1:8000"), (b"x-forwarded-for", ip.encode()), (b"user-agent", UA.encode()),
               (b"accept", b"text/html,*/*;q=0.8"), (b"accept-encoding", b"gzip, deflate, br"),
               (b"accept-language", b"en-GB,en;q=0.9"),
               (b"sec-ch-ua", b'"Chromium";v="126", "Google Chrome";v="126", "Not-A.Brand";v="8"'),
               (b"sec-fetch-mode", b"navigate")]
    return {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 40000 + counter % 1000),
            "scheme": "http", "method": "GET", "root_path": "", "path": path,
            "raw_path": path.encode(), "query_string": b"", "headers": headers}


def _cpu_us(work: Callable[[], object], count: int) -> float:
    start = time.process_time()
    work()
    return round((time.process_time() - start) / max(count, 1) * 1e6, 2)


def _feeding(listener: Callable[[Any, Any], None], pairs: list[tuple[Any, Any]]) -> Callable[[], None]:
    def feed() -> None:
        for ctx, decision in pairs:
            listener(ctx, decision)
    return feed


def parts(count: int) -> dict[str, float]:
    scopes = [scope(i) for i in range(1, count + 1)]
    gc.collect()
    gc.freeze()  # the load generator's requests, not the shield's heap
    with tempfile.TemporaryDirectory() as tmp:
        shield = Shield(Settings.resolve(data_dir=tmp, policy_path=str(apps.POLICY)))
        engine, now = shield.engine, shield.clock.now
        listeners, engine.listeners = list(engine.listeners), []
        out: dict[str, float] = {}
        contexts: list[Any] = []
        out["context"] = _cpu_us(lambda: contexts.extend(engine.contexts.from_asgi(s, now()) for s in scopes),
                                 count)
        decisions: list[Any] = []
        out["engine_decide"] = _cpu_us(lambda: decisions.extend(engine.decide(c) for c in contexts), count)
        pairs = list(zip(contexts, decisions, strict=True))
        for listener in listeners:
            out[f"listener_{type(listener).__name__}"] = _cpu_us(_feeding(listener, pairs), count)
        queued = len(shield.recorder._queue)
        per_event = _cpu_us(shield.recorder.flush, queued)
        out["events_written_per_request"] = round(queued / count, 3)
        out["event_writer_per_event"] = per_event
        out["event_writer"] = round(per_event * queued / count, 2)
        refused = [(c, d) for c, d in pairs if d.action is not Action.ALLOW]

        def reply_all() -> None:
            # Each reply dropped once made, as a server drops it once sent: keeping them all
            # (a list of ~8 kB pages) measured page faults of fresh memory, not the replies.
            for c, d in refused:
                decision_reply(shield.challenge, c, d, "")

        per_reply = _cpu_us(reply_all, len(refused))
        out["reply_per_non_allow"] = per_reply
        out["replies"] = round(per_reply * len(refused) / count, 2)
        shield.close()
    gc.unfreeze()
    return out


def round_trip(variant: str, count: int) -> dict[str, float]:
    """CPU per request of the hello-world app called in-process, all threads and the loop's own."""
    os.environ.setdefault("BENCH_DATA_DIR", tempfile.mkdtemp())
    scopes = [scope(i) for i in range(1, count + 1)]
    gc.collect()
    gc.freeze()

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    async def drive() -> dict[str, float]:
        app: Any = getattr(apps, variant)()
        for s in scopes[: count // 10]:  # warm-up
            await app(dict(s), receive, send)
        measured = scopes[count // 10 :]
        cpu, main = time.process_time(), time.thread_time()
        for s in measured:
            await app(dict(s), receive, send)  # a fresh scope per request, as a server makes
        cpu, main = time.process_time() - cpu, time.thread_time() - main
        shield = getattr(app, "shield", None)
        if shield is not None:
            shield.close()
        return {"cpu_us_per_request": round(cpu / len(measured) * 1e6, 2),
                "other_threads_us_per_request": round((cpu - main) / len(measured) * 1e6, 2)}

    try:
        return asyncio.run(drive())
    finally:
        gc.unfreeze()


def run(count: int = 60_000) -> dict[str, Any]:
    bare = round_trip("bare", count)
    shielded = round_trip("shielded", count)
    added = round(shielded["cpu_us_per_request"] - bare["cpu_us_per_request"], 2)
    return {
        "in_process_us_per_request": {"bare": bare, "shielded": shielded, "added": added},
        "parts_us_per_request": parts(count),
    }
