"""A tiny forward proxy that connects out from a chosen loopback address.

A browser cannot bind its sockets to a source address; pointed at this proxy, its
requests reach the demo from ``source`` (any address in 127.0.0.0/8), as a browser
behind a residential proxy reaches a site. One request per upstream connection.
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

MAX_HEAD = 65536


class BoundProxy:
    def __init__(self, source: str) -> None:
        self.source = source
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._server: asyncio.base_events.Server | None = None
        # The loop holds tasks weakly: a connection's task waiting on its socket must not be
        # collected half-way (that leaves the socket open), so the proxy holds them.
        self._tasks: set[asyncio.Task[None]] = set()
        self._thread = threading.Thread(target=self._run, name="bound-proxy", daemon=True)

    def __enter__(self) -> BoundProxy:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("proxy did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        self._server.close()
        # Connections still open are cancelled and closed here, not left to the garbage collector:
        # a connection accepted while the first ones wind down starts a task of its own, so
        # repeat until none is left.
        for _ in range(20):
            pending = {t for t in asyncio.all_tasks(self._loop) | self._tasks if not t.done()}
            if not pending:
                break
            for task in pending:
                task.cancel()
            self._loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        # A closed transport lets go of its socket on the loop's next turn.
        self._loop.run_until_complete(asyncio.sleep(0))
        self._loop.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        up_writer: asyncio.StreamWriter | None = None
        try:
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
            if len(head) > MAX_HEAD:
                return
            lines = head.decode("latin-1").split("\r\n")
            method, target, version = lines[0].split(" ", 2)
            url = urlsplit(target)
            if url.scheme != "http" or not url.hostname:
                writer.write(b"HTTP/1.1 501 Not Implemented\r\nContent-Length: 0\r\n\r\n")
                return
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            kept = [ln for ln in lines[1:] if ln and not ln.lower().startswith(
                ("connection:", "proxy-connection:", "keep-alive:"))]
            length = next((int(ln.split(":", 1)[1]) for ln in kept if ln.lower().startswith(
                "content-length:")), 0)
            body = await reader.readexactly(length) if length else b""
            up_reader, up_writer = await asyncio.open_connection(
                url.hostname, url.port or 80, local_addr=(self.source, 0))
            self.requests += 1
            out = "\r\n".join([f"{method} {path} {version}", *kept, "Connection: close", "", ""])
            up_writer.write(out.encode("latin-1") + body)
            await up_writer.drain()
            while chunk := await up_reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except (TimeoutError, OSError, ValueError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            for w in (up_writer, writer):
                if w is not None:
                    w.close()
            for w in (up_writer, writer):
                if w is not None:
                    try:  # until the socket is really closed (also when the task was cancelled)
                        await asyncio.wait_for(w.wait_closed(), 5)
                    except (TimeoutError, OSError, asyncio.CancelledError):
                        pass
