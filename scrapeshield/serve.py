"""Run a public app and the admin app on two addresses in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Iterator
from typing import Literal

import uvicorn

from scrapeshield.hosts.asgi import ASGIApp
from scrapeshield.runtime import Shield

log = logging.getLogger("scrapeshield.serve")


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # signals are handled once for both servers by ``serve_pair``


def _config(
    app: ASGIApp, host: str, port: int, lifespan: Literal["auto", "on", "off"]
) -> uvicorn.Config:
    return uvicorn.Config(
        app, host=host, port=port, access_log=False, log_level="warning", proxy_headers=False,
        lifespan=lifespan, server_header=False, timeout_graceful_shutdown=5,
    )


def serve_pair(
    shield: Shield,
    public: ASGIApp,
    admin: ASGIApp,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    on_ready: Callable[[], None] = lambda: None,
) -> None:
    servers = [
        _Server(_config(public, host, port, "auto")),
        _Server(_config(admin, admin_host, admin_port, "off")),
    ]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.should_exit = True

        def reload() -> None:
            problems = shield.reload()
            if problems:
                log.error("SIGHUP reload rejected: %s", "; ".join(problems))

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, reload)
        shield.start()
        tasks = [asyncio.create_task(s.serve()) for s in servers]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                stop()
                break
            await asyncio.sleep(0.05)
        else:
            on_ready()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        asyncio.run(main())
    finally:
        shield.close()
