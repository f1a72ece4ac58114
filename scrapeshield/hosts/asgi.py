"""ASGI middleware: the shield in front of any ASGI application.

Config is checked in ``__init__``; per request, ``__call__`` asks the engine and
either passes the request on untouched or answers it itself. Our own failures
are logged and answered with the fail mode; the app's own exceptions are the
app's and propagate as they would without us.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from scrapeshield.actions.challenge import VERIFY_PATH
from scrapeshield.actions.degrade import MAX_BODY
from scrapeshield.actions.responses import (
    ACTION_HEADER,
    Reply,
    debug_tags,
    decision_reply,
    refusal,
    verify_reply,
    wants_json,
)
from scrapeshield.engine import Engine
from scrapeshield.runtime import Shield
from scrapeshield.types import Action, Decision, RequestContext

log = logging.getLogger("scrapeshield.asgi")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_VERIFY_BODY = 8192
_ACTION_BYTES = ACTION_HEADER.encode()
# Module constants: an Enum class attribute goes through EnumType.__getattr__, and a set of
# actions hashes each with Enum's Python-level __hash__ (rewrite.EDITED: degrade, decoy).
_ALLOW, _TARPIT, _DEGRADE, _DECOY = Action.ALLOW, Action.TARPIT, Action.DEGRADE, Action.DECOY
# A reply's headers as ASGI wants them (bytes), and whether they hold the length, remembered
# per header tuple: the replies of a kind share theirs (a challenge reply's differ by length
# alone, responses.challenge_reply). Bounded; a tuple seen once (a pass cookie) just takes a
# slot until the next clear.
_ENCODED: dict[tuple[tuple[str, str], ...], tuple[tuple[tuple[bytes, bytes], ...], bool]] = {}
_ENCODED_MAX = 512


class ScrapeshieldMiddleware:
    def __init__(self, app: ASGIApp, shield: Shield) -> None:
        self.app = app
        self.shield = shield

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send)
            return
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            if scope["path"] == VERIFY_PATH:
                await self._verify(scope, receive, send)
                return
            engine = self.shield.engine
            ctx = engine.contexts.from_asgi(scope, self.shield.clock.now())  # type: ignore[arg-type]
            decision = await engine.adecide(ctx) if engine.needs_await else engine.decide(ctx)
        except Exception:
            log.exception("shield failed before deciding; applying fail mode")
            if self.shield.policy.source.fail_mode == "closed":
                await _send_reply(send, Reply(503, ((ACTION_HEADER, "block"),), b"unavailable"))
                return
            await self.app(scope, receive, send)
            return
        action = decision.action
        if action is _ALLOW:
            tags = debug_tags(decision) if engine.policy.source.debug_headers else ()
            await self.app(scope, receive, _observing(send, engine, ctx, tags))
            return
        if action is _DEGRADE or action is _DECOY:
            await self._edited(scope, receive, send, ctx, decision)
            return
        try:
            if action is _TARPIT:
                await asyncio.sleep(self.shield.policy.source.tarpit.delay)
            query = scope.get("query_string") or b""
            reply = decision_reply(self.shield.challenge, ctx, decision, query.decode("latin-1"))
        except Exception:
            log.exception("building the %s response failed", decision.action.value)
            reply = refusal(Decision(Action.BLOCK, decision.score, (), "error"), False)
        await _send_reply(send, reply)

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        """A WebSocket handshake is a request like any other: decided the same way, and refused
        (HTTP 403 from the server) unless allowed. A socket has no page to show, so a
        challenge refuses it too: the browser solves one on the page that opens the socket."""
        try:
            engine = self.shield.engine
            ctx = engine.contexts.from_asgi(scope, self.shield.clock.now())  # type: ignore[arg-type]
            decision = await engine.adecide(ctx) if engine.needs_await else engine.decide(ctx)
            allowed = decision.action is Action.ALLOW
        except Exception:
            log.exception("shield failed before deciding a WebSocket; applying fail mode")
            allowed = self.shield.policy.source.fail_mode == "open"
        if allowed:
            await self.app(scope, receive, send)
            return
        message = await receive()  # websocket.connect: refusing before accepting answers 403
        if message.get("type") == "websocket.connect":
            await send({"type": "websocket.close", "code": 1008})

    async def _edited(
        self, scope: Scope, receive: Receive, send: Send, ctx: RequestContext, decision: Decision
    ) -> None:
        """degrade/decoy: the app answers (unencoded), the shield rewrites the answer."""
        inner = dict(scope)
        inner["headers"] = [(k, v) for k, v in scope.get("headers", ()) if k != b"accept-encoding"]
        start: Message | None = None
        chunks: list[bytes] = []
        size = 0

        async def capture(message: Message) -> None:
            nonlocal start, size
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunk = message.get("body", b"")
                size += len(chunk)
                if size <= MAX_BODY:
                    chunks.append(chunk)

        await self.app(inner, receive, capture)
        if start is None:
            return
        try:
            raw = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in start.get("headers", ())]
            status = int(start["status"])
            edited = None if size > MAX_BODY else self.shield.editor.edit(
                ctx, decision, status, raw, b"".join(chunks))
        except Exception:
            log.exception("rewriting the response for %s failed", decision.action.value)
            edited = None
        if edited is None:  # cannot rewrite it safely: the personal data does not leave
            refused = Decision(Action.BLOCK, decision.score, decision.reasons, decision.rule)
            await _send_reply(send, refusal(refused, wants_json(ctx.headers, ctx.path)))
            return
        headers, body = edited
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]})
        await send({"type": "http.response.body", "body": body})

    async def _verify(self, scope: Scope, receive: Receive, send: Send) -> None:
        """POST of a solved challenge: set the pass cookie and send the browser back."""
        if scope.get("method") != "POST":
            await _send_reply(send, Reply(405, (("allow", "POST"),), b"method not allowed"))
            return
        body = await _read_body(receive, MAX_VERIFY_BODY)
        if body is None:
            await _send_reply(send, Reply(413, (), b"too large"))
            return
        ctx = self.shield.engine.contexts.from_asgi(scope, self.shield.clock.now())  # type: ignore[arg-type]
        await _send_reply(send, verify_reply(self.shield.challenge, ctx, body))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return b"".join(chunks)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


def _encode(headers: tuple[tuple[str, str], ...]) -> tuple[tuple[tuple[bytes, bytes], ...], bool]:
    known = _ENCODED.get(headers)
    if known is None:
        known = (tuple([(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers]),
                 any(k == "content-length" for k, _ in headers))
        if len(_ENCODED) >= _ENCODED_MAX:
            _ENCODED.clear()
        _ENCODED[headers] = known
    return known


async def _send_reply(send: Send, reply: Reply) -> None:
    status, headers, body = reply
    encoded, sized = _encode(headers)
    listed = list(encoded)  # the server's own list (a wrapping middleware may edit it)
    if not sized:
        listed.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": listed})
    await send({"type": "http.response.body", "body": body})


def _observing(send: Send, engine: Engine, ctx: RequestContext, tags: tuple[tuple[str, str], ...]) -> Send:
    """Tells the engine the answer's status (a 404 share is behaviour), and adds
    X-Scrapeshield-Action and the score to an allowed response when debug_headers is on."""

    async def observed(message: Message) -> None:
        if message["type"] == "http.response.start":
            engine.observe(ctx, int(message.get("status", 200)))
            if tags:
                headers = list(message.get("headers", ()))
                headers += [(k.encode(), v.encode()) for k, v in tags]
                message["headers"] = headers
        await send(message)

    return observed
