"""The hello-world Starlette app, bare and behind each protection, for uvicorn --factory.

Every variant ends with ``settle_heap()``, as a serving process that embeds the middleware
should (hosts/heap.py): the same step for the baseline and for each protection.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from scrapeshield.hosts.heap import settle_heap

POLICY = Path(__file__).with_name("bench-policy.yaml")


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello, world")


def _app() -> Starlette:
    return Starlette(routes=[Route("/", hello), Route("/u/{name}", hello)])


def bare() -> Starlette:
    app = _app()
    settle_heap()
    return app


def shielded():  # type: ignore[no-untyped-def]
    from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
    from scrapeshield.runtime import Shield
    from scrapeshield.settings import Settings

    shield = Shield(Settings.resolve(data_dir=os.environ["BENCH_DATA_DIR"], policy_path=str(POLICY)))
    shield.start()
    app = ScrapeshieldMiddleware(_app(), shield)
    settle_heap()
    return app


def with_slowapi() -> Starlette:
    from slowapi import Limiter
    from slowapi.middleware import SlowAPIMiddleware
    from slowapi.util import get_remote_address

    limiter = Limiter(key_func=get_remote_address, default_limits=["1000000/minute"])
    app = _app()
    app.state.limiter = limiter
    app.add_middleware(SlowAPIMiddleware)
    settle_heap()
    return app
