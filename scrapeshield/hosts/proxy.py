"""Reverse proxy: the shield in front of an app written in any language.

A plain ASGI app that streams each request to the upstream with httpx and the
answer back; wrap it in ScrapeshieldMiddleware to protect the upstream.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable

import httpx

from scrapeshield.hosts.asgi import Receive, Scope, Send

log = logging.getLogger("scrapeshield.proxy")

# RFC 9110 §7.6.1 connection-specific headers, never forwarded.
HOP_BY_HOP = frozenset(
    b"connection keep-alive proxy-authenticate proxy-authorization te trailer "
    b"transfer-encoding upgrade proxy-connection".split()
)


# Headers that describe the original request as a proxy saw it; kept only from trusted peers.
_FORWARDING = frozenset((b"x-forwarded-proto", b"x-forwarded-host", b"x-real-ip", b"forwarded"))


class ReverseProxy:
    def __init__(
        self,
        upstream: str,
        timeout: float = 30.0,
        max_connections: int = 200,
        trusts: Callable[[str], bool] = lambda peer: False,
    ) -> None:
        """``trusts(peer)``: whether a peer is a proxy whose X-Forwarded-* headers are believed."""
        self.trusts = trusts
        url = httpx.URL(upstream)
        if url.scheme not in ("http", "https") or not url.host:
            raise ValueError(f"upstream must be an http(s) URL, not {upstream!r}")
        self.upstream = url
        self.client = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=5.0),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=64),
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        url = self._url(scope)
        if url is None:
            # httpx would resolve "." and ".." segments, so the upstream would get another path
            # than the one the shield decided on (e.g. /static/../api/v1/users/5, an asset to the
            # shield, a profile to the upstream). Browsers never send them.
            await _plain(send, 400, b"bad request path")
            return
        headers = self._request_headers(scope)
        # A request without a body is sent without one (not as an empty chunked body).
        has_body = any(name in (b"content-length", b"transfer-encoding") for name, _ in scope["headers"])
        request = self.client.build_request(
            scope["method"], url, headers=headers, content=_body(receive) if has_body else None
        )
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            log.warning("upstream %s failed: %s", self.upstream, type(exc).__name__)
            await _plain(send, 502, b"bad gateway")
            return
        try:
            # The server in front adds its own Date; a second one would be a duplicate.
            out = [(k.lower(), v) for k, v in response.headers.raw
                   if k.lower() not in HOP_BY_HOP and k.lower() != b"date"]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": out})
            try:
                async for chunk in response.aiter_raw():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            except httpx.HTTPError as exc:
                # Too late for a 502: the answer stays unfinished, so the server cuts the
                # connection and the client sees it is incomplete (no traceback in the log).
                log.warning("upstream %s failed mid-response: %s", self.upstream, type(exc).__name__)
                return
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()

    def _url(self, scope: Scope) -> httpx.URL | None:
        """The upstream URL for exactly the path the shield saw, or None if there is none."""
        path: str = scope["path"]
        if not path.startswith("/") or any(part in (".", "..") for part in path.split("/")):
            return None
        # ASGI's raw_path never holds the query string: append it in every case.
        target: bytes = scope.get("raw_path") or path.encode()
        query: bytes = scope.get("query_string") or b""
        try:
            return self.upstream.copy_with(raw_path=target + (b"?" + query if query else b""))
        except (httpx.InvalidURL, UnicodeError):
            return None

    def _request_headers(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        headers: list[tuple[bytes, bytes]] = []
        forwarded: bytes | None = None
        host = b""
        client = scope.get("client")
        trusted = client is not None and self.trusts(client[0])
        for name, value in scope["headers"]:
            if name in HOP_BY_HOP:
                continue
            if name in _FORWARDING and not trusted:
                continue  # a client's own claim of scheme or host is not passed on as ours
            if name == b"x-forwarded-for":
                forwarded = value if forwarded is None else forwarded + b", " + value
                continue
            if name == b"host":
                host = value
                continue
            headers.append((name, value))
        peer = client[0].encode() if client else b"unknown"
        headers.append((b"x-forwarded-for", forwarded + b", " + peer if forwarded else peer))
        if not any(name == b"x-forwarded-proto" for name, _ in headers):
            headers.append((b"x-forwarded-proto", scope.get("scheme", "http").encode()))
        if host and not any(name == b"x-forwarded-host" for name, _ in headers):
            headers.append((b"x-forwarded-host", host))
        return headers

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _plain(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"text/plain"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})


async def _body(receive: Receive) -> AsyncIterator[bytes]:
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return
        chunk = message.get("body", b"")
        if chunk:
            yield chunk
        if not message.get("more_body", False):
            return
