"""Run a public app and the admin app on two addresses in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
from collections.abc import Callable, Iterator
from typing import Literal

import uvicorn

from scrapeshield.errors import ConfigError
from scrapeshield.hosts.asgi import ASGIApp
from scrapeshield.hosts.edge_server import EdgeServer
from scrapeshield.hosts.heap import settle_heap
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
    public: ASGIApp | EdgeServer,
    admin: ASGIApp,
    host: str,
    port: int,
    admin_host: str,
    admin_port: int,
    on_ready: Callable[[], None] = lambda: None,
    public_socket: socket.socket | None = None,
) -> None:
    """``public_socket``: already listening (e.g. a Unix socket) instead of ``host:port``."""
    # Both addresses are bound before anything starts, so a port in use is one clear error
    # (ConfigError) instead of uvicorn's SystemExit from inside a task, with tracebacks.
    sockets: list[socket.socket] = []
    try:
        sockets.append(public_socket or _bind(host, port))
        sockets.append(_bind(admin_host, admin_port))
    except ConfigError:
        for sock in sockets:
            sock.close()
        shield.close()
        raise
    # Both kinds of server run on uvloop when installed (uvicorn[standard] brings it), as
    # ``uvicorn.run`` would choose; ``Server.serve`` alone would leave asyncio's default loop.
    first = public if isinstance(public, EdgeServer) else _Server(_config(public, host, port, "auto"))
    servers: list[EdgeServer | uvicorn.Server] = [
        first, _Server(_config(admin, admin_host, admin_port, "off"))]

    async def main() -> None:
        loop = asyncio.get_running_loop()

        def stop() -> None:
            for server in servers:
                server.should_exit = True

        def reload() -> None:
            problems = shield.reload()
            if problems:
                log.error("SIGHUP reload rejected: %s", "; ".join(problems))
            try:  # the audit trail records every reload, as the admin API's does
                shield.db.audit(shield.clock.now(), "sighup", "policy.reload", {"ok": not problems})
            except Exception:
                log.exception("could not write the policy reload to the audit trail")

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        loop.add_signal_handler(signal.SIGHUP, reload)
        shield.start()
        settle_heap()  # startup's heap out of full GC passes (hosts/heap.py)
        tasks = [asyncio.create_task(s.serve([sock])) for s, sock in zip(servers, sockets, strict=True)]
        while not all(s.started for s in servers):
            if any(t.done() for t in tasks):
                stop()
                break
            await asyncio.sleep(0.05)
        else:
            on_ready()
        await asyncio.gather(*tasks, return_exceptions=True)

    try:
        with asyncio.Runner(loop_factory=_fast_loop()) as runner:
            runner.run(main())
    finally:
        for sock in sockets:
            sock.close()
        shield.close()


def _fast_loop() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket for uvicorn, for the first address ``host`` resolves to."""
    sock: socket.socket | None = None
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        # proto must be IPPROTO_TCP: asyncio sets TCP_NODELAY on accepted sockets only then
        # (without it every small response waits ~40 ms on Nagle and delayed ACKs).
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        # Listening now, not when the server starts: with SO_REUSEADDR a second bind to a port
        # that is bound but not yet listening succeeds, and only listen() reports the clash.
        sock.listen(2048)
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock
