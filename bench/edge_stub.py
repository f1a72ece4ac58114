"""A decision service that decides nothing: the floor under `serve-decisions` in bench/nginx.py.

It answers every request head with an empty 200 (allow) on uvloop, parsing nothing but the
blank line that ends a head (nginx's auth subrequest has no body). What it costs per request
is what any server pays in the kernel and the event loop for one round trip with nginx over
the same kind of socket (TCP loopback or a Unix socket), so the service's figure minus this
one is what scrapeshield itself adds.

    python -m bench.edge_stub --port 8002 | --unix /run/stub.sock
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket

import uvloop

ALLOW = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"


class _Stub(asyncio.Protocol):
    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.tail = b""  # the end of the last read, in case a head's blank line was split

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        data = self.tail + data
        heads = data.count(b"\r\n\r\n")
        self.tail = data[-3:]
        if heads and self.transport is not None:
            self.transport.write(ALLOW * heads)
            self.tail = data[data.rindex(b"\r\n\r\n") + 4:][-3:]


async def _serve(port: int | None, unix: str | None) -> None:
    loop = asyncio.get_running_loop()
    if unix:
        if os.path.exists(unix):
            os.unlink(unix)
        server = await loop.create_unix_server(_Stub, unix, backlog=2048)
        os.chmod(unix, 0o666)
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", port or 0))
        sock.listen(2048)
        server = await loop.create_server(_Stub, sock=sock)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--unix")
    args = parser.parse_args()
    uvloop.run(_serve(args.port, args.unix))


if __name__ == "__main__":
    main()
