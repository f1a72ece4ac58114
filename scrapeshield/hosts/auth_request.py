"""Decision service: the shield asked by an edge proxy (nginx, Caddy, Traefik) before it forwards.

The proxy sends the original request's headers plus its method and URI; the service runs the
same engine as in-process (the URI goes through the policy's route map, so distinct-record
limits count at the edge too). Endpoints, by who asks:

- ``/.scrapeshield/auth-request``, nginx ``auth_request``: 200 allow, 401 challenge, 403
  throttle/block/tarpit, no body (nginx reads the status only; 401 and 403 are the refusals it
  passes on), with ``X-Scrapeshield-Action``, ``Retry-After`` and ``X-Scrapeshield-Challenge``.
  A 401 also carries the challenge's data (``X-Scrapeshield-Challenge-Data``): nginx fills in
  the page itself (hosts/edge_page.py), so a challenge costs one request here, not two. Data
  too long for a header (a very long URI) gets 403 instead: nginx then asks for the page.
- ``/.scrapeshield/page``, nginx ``error_page``: the response for the decision named in
  ``X-Scrapeshield-Action`` (challenge page, 429, 403), without deciding again.
- ``/.scrapeshield/forward-auth``, Caddy ``forward_auth`` and Traefik ``ForwardAuth``: 200
  allow, otherwise the very response the client gets (those proxies return it as is).
- ``/.scrapeshield/verify``, the browser: a solved challenge earns the pass cookie.

Method and URI come from ``X-Original-Method``/``X-Original-URI`` (nginx) or
``X-Forwarded-Method``/``X-Forwarded-Uri`` (forward-auth). Each endpoint reads only its own
pair: Caddy passes a client's own X-Original-URI on, so it must mean nothing there. The client
address is resolved as in-process: ``X-Forwarded-For`` counts only from a peer listed in
``trusted_proxies`` (``X-Real-IP`` only when no ``X-Forwarded-For`` arrived).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import math
import re
from collections.abc import Awaitable, Callable
from typing import Final, cast
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from scrapeshield.actions.challenge import VERIFY_PATH
from scrapeshield.actions.responses import (
    ACTION_HEADER,
    HOLD_RULE,
    Reply,
    challenge_reply,
    refusal,
    verify_reply,
    wants_json,
)
from scrapeshield.hosts.asgi import Receive, Scope, Send, _read_body, _send_reply
from scrapeshield.hosts.edge_server import EdgeRequest, header_lines
from scrapeshield.runtime import Shield
from scrapeshield.types import Action, Decision, RequestContext, tuple_new

log = logging.getLogger("scrapeshield.decisions")

AUTH_REQUEST_PATH: Final = "/.scrapeshield/auth-request"
FORWARD_AUTH_PATH: Final = "/.scrapeshield/forward-auth"
PAGE_PATH: Final = "/.scrapeshield/page"
CHALLENGE_HEADER: Final = "x-scrapeshield-challenge"
CHALLENGE_DATA_HEADER: Final = "x-scrapeshield-challenge-data"  # the page's data, for nginx to fill in
# Longer data (a long return_to) is not sent in a header: nginx's proxy_buffer_size (4 KiB by
# default) holds the whole head of the auth response, and a head over it fails the subrequest.
MAX_CHALLENGE_DATA: Final = 2048
RETRY_HEADER: Final = "x-scrapeshield-retry-after"  # the decision's Retry-After, passed back to /page
MAX_VERIFY_BODY: Final = 8192
_NGINX: Final = ("x-original-method", "x-original-uri")
_FORWARD: Final = ("x-forwarded-method", "x-forwarded-uri")
# Set by the proxy, not by the client: never part of the client's header set or order.
_CONTROL: Final = frozenset([*_NGINX, *_FORWARD, "x-forwarded-host", "x-real-ip", ACTION_HEADER,
                             RETRY_HEADER])
_NO_STORE: Final = ("cache-control", "no-store")
_MAX_NOTED: Final = 1024
# What quote(safe="") leaves alone, and "/": most paths, quoted by one replace (quote: 2 µs).
_PLAIN_PATH: Final = re.compile(r"[A-Za-z0-9_.~/-]*")
_METHODS: Final = {m: m for m in "GET HEAD POST PUT PATCH DELETE OPTIONS".split()}
_ALLOWED: Final = Reply(200, (), b"")
_REPLY: Final = Reply  # built with tuple_new: Reply(...) runs the NamedTuple's Python __new__
_ALLOW: Final = Action.ALLOW  # module constants: an Enum class attribute is a slow lookup
_CHALLENGE: Final = Action.CHALLENGE
_THROTTLE: Final = Action.THROTTLE
_TARPIT: Final = Action.TARPIT
_CHALLENGED: Final = (ACTION_HEADER, "challenge")
# The auth answers' fixed headers, encoded once (hosts/edge_server.py).
header_lines([_NO_STORE, *((ACTION_HEADER, action.value) for action in Action)])


class DecisionService:
    """ASGI app. Config in ``__init__``; never answers 500 (failures get the policy's fail mode)."""

    def __init__(self, shield: Shield) -> None:
        self.shield = shield
        self._noted: set[str] = set()  # warnings given and proxies found trusted, per policy
        self._noted_policy = shield.policy
        self._trusted_peer: str | None = None  # the last proxy found trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        body: bytes | None = b""
        if scope["path"] == VERIFY_PATH and scope.get("method") == "POST":
            body = await _read_body(receive, MAX_VERIFY_BODY)
        answer = self.answer(_edge_request(scope), body)
        await _send_reply(send, answer if isinstance(answer, Reply) else await answer)

    def answer(self, request: EdgeRequest, body: bytes | None) -> Reply | Awaitable[Reply]:
        """The reply to one request (``body``: the request's, None when over MAX_VERIFY_BODY).

        A reply that needs no waiting comes back at once, so a lean server answers in the same
        event-loop step (hosts/edge_server.py); one that must wait (a networked state store, a
        tarpit's delay) comes back as an awaitable. Neither raises: failures get the fail mode."""
        path = request.path
        try:
            if path == AUTH_REQUEST_PATH:
                return self._auth_request(request)
            if path == FORWARD_AUTH_PATH:
                return self._forward_auth(request)
            if path == PAGE_PATH:
                return self._page(request)
            if path == VERIFY_PATH:
                return self._verify(request, body)
            return Reply(404, (("content-type", "text/plain"),), b"not found")
        except Exception:
            log.exception("decision service failed on %s; applying fail mode", path)
            return self._failed(path)

    async def _later(self, path: str, pending: Awaitable[Reply]) -> Reply:
        try:
            return await pending
        except Exception:
            log.exception("decision service failed on %s; applying fail mode", path)
            return self._failed(path)

    # -- endpoints ----------------------------------------------------------------------------

    def _decided(
        self, path: str, ctx: RequestContext, reply: Callable[[Decision], Reply | Awaitable[Reply]]
    ) -> Reply | Awaitable[Reply]:
        """``reply`` to the engine's decision: at once on in-memory state, else awaited."""
        engine = self.shield.engine
        if not engine.needs_await:
            return reply(engine.decide(ctx))

        async def later() -> Reply:
            answer = reply(await engine.adecide(ctx))
            return answer if isinstance(answer, Reply) else await answer

        return self._later(path, later())

    def _auth_request(self, request: EdgeRequest) -> Reply | Awaitable[Reply]:
        ctx, uri, _ = self._original(request, _NGINX, False)
        engine = self.shield.engine
        if not engine.needs_await:  # the common case, without _decided's closure
            return self._auth_reply(ctx, uri, engine.decide(ctx))
        return self._decided(AUTH_REQUEST_PATH, ctx, lambda decision: self._auth_reply(ctx, uri, decision))

    def _auth_reply(self, ctx: RequestContext, uri: str, decision: Decision) -> Reply:
        # A page held for its script (actions/hold.py) needs the body: here it is challenged.
        action = _CHALLENGE if decision.rule == HOLD_RULE else decision.action
        if action is _ALLOW:
            return self._allowed(decision)
        if action is not _CHALLENGE:
            headers: tuple[tuple[str, str], ...] = ((ACTION_HEADER, action.value), _NO_STORE)
            if action is _THROTTLE or action is _TARPIT:
                headers += (("retry-after", _seconds(decision.retry_after)),)
            return tuple_new(_REPLY, (403, headers, b""))
        target = _return_to(ctx.method, uri)
        link = f"{PAGE_PATH}?return_to={_quoted(target)}"
        if len(link) > MAX_CHALLENGE_DATA:  # a head over nginx's buffer would fail open
            return tuple_new(_REPLY, (403, (_CHALLENGED, _NO_STORE), b""))  # nginx asks /page
        data = self.shield.challenge.page_data(ctx.ip, ctx.user_agent, target)
        if len(data) > MAX_CHALLENGE_DATA:
            return tuple_new(_REPLY, (403, (_CHALLENGED, _NO_STORE, (CHALLENGE_HEADER, link)), b""))
        return tuple_new(_REPLY, (401, (_CHALLENGED, _NO_STORE, (CHALLENGE_HEADER, link),
                                        (CHALLENGE_DATA_HEADER, data)), b""))

    def _forward_auth(self, request: EdgeRequest) -> Reply | Awaitable[Reply]:
        ctx, uri, _ = self._original(request, _FORWARD, True)
        return self._decided(FORWARD_AUTH_PATH, ctx, lambda decision: self._forward_reply(ctx, uri, decision))

    def _forward_reply(self, ctx: RequestContext, uri: str, decision: Decision) -> Reply | Awaitable[Reply]:
        if decision.action is Action.ALLOW:
            return self._allowed(decision)
        return self._respond(FORWARD_AUTH_PATH, ctx, decision, uri)

    def _page(self, request: EdgeRequest) -> Reply | Awaitable[Reply]:
        """The answer nginx shows for a decision its auth request got; nothing is counted again.

        Without X-Scrapeshield-Action: the challenge page for ``?return_to=`` (the URL that
        X-Scrapeshield-Challenge names), else a plain 403 (a refusal that was not ours)."""
        ctx, uri, control = self._original(request, _NGINX, False)
        decided = control.get(ACTION_HEADER, "").strip().lower()
        query = dict(parse_qsl(request.query, max_num_fields=4)) if request.query else {}
        return_to = query.get("return_to", "")
        try:
            action = Action(decided or ("challenge" if return_to else "allow"))
        except ValueError:
            action = Action.ALLOW
        if action is Action.ALLOW:
            return Reply(403, (("content-type", "text/plain"), _NO_STORE), b"forbidden")
        retry = _float(control.get(RETRY_HEADER, ""))
        decision = Decision(action, 0.0, (), "edge", retry, ctx.ip)
        return self._respond(PAGE_PATH, ctx, decision, return_to or uri)

    def _verify(self, request: EdgeRequest, body: bytes | None) -> Reply:
        """POST of a solved challenge: set the pass cookie and send the browser back."""
        if request.method != "POST":
            return Reply(405, (("allow", "POST"),), b"method not allowed")
        if body is None:
            return Reply(413, (), b"too large")
        ctx, _, _ = self._original(request, (), False)
        return verify_reply(self.shield.challenge, ctx, body)

    # -- helpers ------------------------------------------------------------------------------

    def _allowed(self, decision: Decision) -> Reply:
        if not self.shield.engine.policy.source.debug_headers:  # shield.policy, less a call
            return _ALLOWED
        return Reply(200, self._debug(decision), b"")

    def _respond(
        self, path: str, ctx: RequestContext, decision: Decision, uri: str
    ) -> Reply | Awaitable[Reply]:
        """What the in-process middleware would answer for ``decision``."""
        if decision.action is Action.CHALLENGE or decision.rule == HOLD_RULE:
            page = self.shield.challenge.page(ctx.ip, ctx.user_agent, _return_to(ctx.method, uri))
            return challenge_reply(page)
        reply = refusal(decision, wants_json(ctx.headers, ctx.path))
        if decision.action is Action.TARPIT:
            return self._later(path, _delayed(self.shield.policy.source.tarpit.delay, reply))
        return reply

    def _original(
        self, request: EdgeRequest, control: tuple[str, ...], forwarded_host: bool
    ) -> tuple[RequestContext, str, dict[str, str]]:
        """The original request's context, its URI as the proxy gave it ("" when missing), and
        the control headers (set by the proxy: kept out of the client's header set and order)."""
        # One pass: the client's headers kept for the context, the proxy's set aside.
        # The pairs as objects: compiled, a tuple[str, str] is a C struct, and each would be
        # boxed into a new tuple to be kept; as objects, the request's own tuples are kept.
        kept: list[object] = []
        found: dict[str, str] = {}
        forwarded = False
        for header in cast(list[object], request.headers):
            pair = cast(tuple[str, ...], header)
            name = pair[0]
            if name in _CONTROL:
                found[name] = pair[1]
            else:
                if name == "x-forwarded-for":
                    forwarded = True
                kept.append(header)
        client = cast(list[tuple[str, str]], kept)
        uri = found.get(control[1], "") if control else ""
        if control and not uri:
            missing = control[1]
            self._warn(f"uri:{missing}", "requests carry no %s header: deciding on '/'; configure "
                       "the proxy as in deploy/", missing)
        host = found.get("x-forwarded-host") if forwarded_host else None
        if host:  # Traefik names the service in Host and the site in X-Forwarded-Host
            client = [("host", host) if n == "host" else (n, v) for n, v in client]
            if not any(n == "host" for n, _ in client):
                client.insert(0, ("host", host))
        if "x-real-ip" in found:
            real_ip = found["x-real-ip"].strip()
            if real_ip and not forwarded:
                client.append(("x-forwarded-for", real_ip))  # a proxy that sets X-Real-IP only
                forwarded = True
        peer = request.peer
        engine = self.shield.engine
        policy = engine.policy  # what shield.policy answers, without its property call
        if self._noted_policy is not policy:  # reloaded: trusted_proxies may differ
            self._noted_policy = policy
            self._noted.clear()
            self._trusted_peer = None
        if forwarded and peer != self._trusted_peer and f"peer:{peer}" not in self._noted:
            self._check_peer(peer)
        if control:
            method = _method(found.get(control[0], ""))
            path = _path(uri)
        else:
            method, path = request.method or "GET", request.path or "/"
        ctx = engine.contexts.build(self.shield.clock.now(), peer, method, path, client, request.scheme)
        return ctx, uri, found

    def _debug(self, decision: Decision) -> tuple[tuple[str, str], ...]:
        if not self.shield.policy.source.debug_headers:
            return ()
        return ((ACTION_HEADER, decision.action.value), ("x-scrapeshield-score", f"{decision.score:g}"))

    def _failed(self, path: str) -> Reply:
        closed = self.shield.policy.source.fail_mode == "closed"
        if path == AUTH_REQUEST_PATH:
            return Reply(403 if closed else 200, ((ACTION_HEADER, "block"),) if closed else (), b"")
        if path == FORWARD_AUTH_PATH and not closed:
            return Reply(200, (), b"")
        return Reply(503 if path == FORWARD_AUTH_PATH else 403,
                     ((ACTION_HEADER, "block"), ("content-type", "text/plain")), b"unavailable")

    def _check_peer(self, peer: str) -> None:
        """Say once per proxy address when its forwarding headers are ignored (not trusted)."""
        try:
            addr = ipaddress.ip_address(peer)
            if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
                addr = addr.ipv4_mapped
            trusted = any(addr in net for net in self.shield.policy.trusted_proxies)
        except ValueError:
            trusted = False
        if trusted:
            self._trusted_peer = peer  # the next request from it skips this check
            if len(self._noted) < _MAX_NOTED:
                self._noted.add(f"peer:{peer}")
            return
        self._warn(f"peer:{peer}", "the proxy at %r is not in trusted_proxies: its X-Forwarded-For "
                   "is ignored and every request counts as coming from it", peer)

    def _warn(self, key: str, message: str, *args: object) -> None:
        if key not in self._noted and len(self._noted) < _MAX_NOTED:
            self._noted.add(key)
            log.warning(message, *args)


def _path(uri: str) -> str:
    """The path the proxy routes on: percent-decoded (as an ASGI server does), dot segments
    resolved and slashes merged (as nginx does). "/" for a missing or garbled URI."""
    if uri[:1] != "/":
        if not uri.startswith(("http://", "https://")):
            return "/"
        try:  # absolute form: keep its path
            uri = urlsplit(uri).path or "/"
        except ValueError:
            return "/"
        if uri[:1] != "/":
            return "/"
    end = uri.find("?")
    path = uri if end < 0 else uri[:end]
    if "#" in path:
        path = path.partition("#")[0]
    if "%" in path:  # unquote's own shortcut, without the call
        path = unquote(path, errors="replace")
    if "//" not in path and "/." not in path:
        return path
    parts: list[str] = []
    for segment in path.split("/"):
        if segment == "..":
            if parts:
                parts.pop()
        elif segment not in ("", "."):
            parts.append(segment)
    trailing = path.endswith(("/", "/.", "/..")) and bool(parts)
    return "/" + "/".join(parts) + ("/" if trailing else "")


def _method(raw: str) -> str:
    known = _METHODS.get(raw)
    if known is not None:
        return known
    value = raw.strip().upper()
    if value and len(value) <= 16 and value.isascii() and value.isalpha():
        return value
    return "GET" if not value else "OTHER"


def _quoted(target: str) -> str:
    """``quote(target, safe="")``, quicker for a plain path."""
    if _PLAIN_PATH.fullmatch(target):
        return target.replace("/", "%2F")
    return quote(target, safe="")


def _return_to(method: str, uri: str) -> str:
    """Where a solved challenge sends the browser: the original URI for a GET, else home."""
    return uri if method in ("GET", "HEAD") and uri.startswith("/") else "/"


def _seconds(value: float) -> str:
    return str(max(1, min(86400, math.ceil(value))))


def _float(text: str) -> float:
    if not text:  # nginx passes an empty X-Scrapeshield-Retry-After for all but throttles
        return 1.0
    try:
        return max(1.0, min(86400.0, float(text)))
    except ValueError:
        return 1.0


async def _delayed(seconds: float, reply: Reply) -> Reply:
    await asyncio.sleep(seconds)
    return reply


def _edge_request(scope: Scope) -> EdgeRequest:
    """An ASGI scope as the edge server would have parsed it."""
    client = scope.get("client")
    query = scope.get("query_string") or b""
    return EdgeRequest(
        str(scope.get("method") or "GET"), str(scope.get("path") or "/"), query.decode("latin-1"),
        [(name.decode("latin-1").lower(), value.decode("latin-1")) for name, value in scope["headers"]],
        str(client[0]) if client else "", str(scope.get("scheme") or "http"))


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
