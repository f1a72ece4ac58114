"""WSGI middleware: the shield in front of any WSGI application (Flask, Django, Pyramid…).

``Gate`` is the host-independent part: an environ in, a ``Verdict`` out (the app
answers, possibly with debug headers added, or the shield answers with a ``Reply``).
``ScrapeshieldWSGI`` sends that verdict the WSGI way; ``scrapeshield.contrib.django``
sends it the Django way. Our own failures are logged and answered with the fail mode;
the app's own exceptions are the app's and propagate as they would without us.

A sync worker waits out a tarpit delay in its own thread (the ASGI form does not
hold a worker): keep ``tarpit.delay`` short on WSGI servers with few threads.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from http import HTTPStatus
from types import TracebackType
from typing import TYPE_CHECKING, Final, final
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from scrapeshield.actions.challenge import VERIFY_PATH
from scrapeshield.actions.degrade import MAX_BODY
from scrapeshield.actions.responses import (
    ACTION_HEADER,
    Headers,
    Reply,
    debug_tags,
    decision_reply,
    refusal,
    verify_reply,
    wants_json,
)
from scrapeshield.actions.rewrite import EDITED
from scrapeshield.hosts.view import EngineView, ShieldView
from scrapeshield.runtime import Shield
from scrapeshield.types import Action, Decision, RequestContext

if TYPE_CHECKING:
    from mypy_extensions import i64  # machine integers where compiled; plain ints otherwise

log = logging.getLogger("scrapeshield.wsgi")

MAX_VERIFY_BODY = 8192
MAX_NAMES = 4096  # environ keys whose header names are remembered (clients choose the names)
Reader = Callable[[int], bytes]
OptExcInfo = tuple[type[BaseException], BaseException, TracebackType] | tuple[None, None, None]

_LINES = {s.value: f"{s.value} {s.phrase}" for s in HTTPStatus}  # HTTPStatus(n) is a slow call
_UNAVAILABLE = Reply(503, ((ACTION_HEADER, "block"), ("content-type", "text/plain")), b"unavailable")


class Verdict:
    """What the gate found. A plain class, not a NamedTuple: compiled, it is built without the
    interpreted ``__new__`` a NamedTuple has (once per request)."""

    __slots__ = ("allowed", "edit", "reply", "tags")

    def __init__(
        self, reply: Reply | None, tags: Headers = (),
        edit: tuple[RequestContext, Decision] | None = None, allowed: RequestContext | None = None,
    ) -> None:
        self.reply = reply  # the shield answers itself; None: the app answers
        self.tags = tags  # headers to add to the app's answer (debug_headers only)
        self.edit = edit  # degrade/decoy the app's answer
        self.allowed = allowed  # let through: the host reports the answer's status


_PASS: Final = Verdict(None)
_VERIFY_PATH: Final = VERIFY_PATH  # read natively, not from the module's namespace
# The header names of CONTENT_TYPE and CONTENT_LENGTH, which servers fill in empty when the
# header was not sent (so an empty value there means nothing, unlike an HTTP_* header's).
# Compared by identity: an HTTP_CONTENT_TYPE key's name is an equal but other str, kept empty.
_CONTENT_TYPE, _CONTENT_LENGTH = "content-type", "content-length"


# -- the environ side ---------------------------------------------------------------------


def environ_path(environ: WSGIEnvironment) -> str:
    """The request path as the ASGI host sees it: SCRIPT_NAME + PATH_INFO, UTF-8 decoded.

    WSGI hands the path over as bytes decoded as latin-1 (PEP 3333); ASGI as UTF-8.
    """
    raw = _text(environ, "SCRIPT_NAME") + _text(environ, "PATH_INFO")
    if raw.isascii():
        return raw or "/"
    try:
        return raw.encode("latin-1").decode("utf-8", "replace")
    except UnicodeEncodeError:  # already real text (not what PEP 3333 says, but seen)
        return raw


def environ_headers(
    environ: WSGIEnvironment, names: dict[object, str] | None = None
) -> list[tuple[str, str]]:
    """(lower-case name, value) pairs back from the CGI-style keys.

    WSGI loses what a header order detector would want: the environ is a dict, so the
    order is whatever the server inserted (gunicorn, waitress and werkzeug insert in the
    order received, which we keep; others may not), repeated headers arrive joined with
    commas, and ``-`` and ``_`` in names are indistinguishable. ``names`` caches key →
    header name ("" for other keys) across requests; it stops growing at MAX_NAMES.
    """
    if names is None:
        names = {}
    # Keys and values as objects: a server (or a test) may put anything in the environ, and
    # compiled code would otherwise check every key for a str before looking at it.
    items: Iterable[tuple[object, object]] = environ.items()
    try:  # every key seen before (nearly always): one comprehension, no per-key branches
        return [(known, value) for key, value in items
                if (known := names[key]) and type(value) is str and (value or _sent(known))]
    except KeyError:
        pass
    headers: list[tuple[str, str]] = []
    for key, value in items:
        name = names.get(key)
        if name is None:
            if type(key) is not str:
                continue
            if key.startswith("HTTP_"):
                name = key[5:].replace("_", "-").lower()
            elif key == "CONTENT_TYPE" or key == "CONTENT_LENGTH":
                name = _CONTENT_TYPE if key == "CONTENT_TYPE" else _CONTENT_LENGTH
            else:
                name = ""
            if len(names) < MAX_NAMES:
                names[key] = name
        # Servers fill in an empty CONTENT_TYPE/CONTENT_LENGTH when the header was not sent.
        if name and type(value) is str and (value or _sent(name)):
            headers.append((name, value))
    return headers


def _sent(name: str) -> bool:
    """Whether an empty value under ``name`` was sent by the client (not a CGI blank)."""
    return name is not _CONTENT_TYPE and name is not _CONTENT_LENGTH


def read_body(environ: WSGIEnvironment, limit: int, read: Reader | None = None) -> bytes | int:
    """At most ``limit`` bytes of the request body, or the status to refuse it with.

    ``read`` defaults to ``wsgi.input``'s; CONTENT_LENGTH is checked before anything is read.
    """
    length = environ.get("CONTENT_LENGTH")
    if length is None or length == "":
        if read is None and not environ.get("wsgi.input_terminated"):
            return b""  # PEP 3333: no CONTENT_LENGTH, no body to read
        size = limit + 1  # the stream ends by itself: read one byte too many at most
    elif type(length) is not str or not length.isascii() or not length.isdigit():
        return 400
    elif len(length) > 18 or int(length) > limit:
        return 413
    else:
        size = int(length)
    if size == 0:
        return b""
    if read is None:
        read = getattr(environ.get("wsgi.input"), "read", None)
        if not callable(read):
            return 400
    return _read(read, size, limit)


def _read(read: Reader, size: int, limit: int) -> bytes | int:
    chunks: list[bytes] = []
    got = 0
    try:
        while got < size:
            chunk = read(size - got)
            if not chunk:
                break
            if not isinstance(chunk, bytes):
                return 400
            chunks.append(chunk)
            got += len(chunk)
    except Exception:  # a client that hangs up mid-body, a server's own stream error
        log.info("reading the verify body failed", exc_info=True)
        return 400
    return 413 if got > limit else b"".join(chunks)


def _text(environ: WSGIEnvironment, key: str, default: str = "") -> str:
    value = environ.get(key, default)
    return value if type(value) is str else default


# -- the gate ------------------------------------------------------------------------------


class Gate:
    """One shield's decisions for WSGI-style requests; never raises.

    Holds the lock that serialises the in-memory state for threaded servers (the memory
    store is not thread-safe): use one Gate per shield and process.
    """

    def __init__(self, shield: Shield) -> None:
        self.shield = shield
        self._view: ShieldView = shield  # the engine, read as it is (hosts/view.py)
        self._lock = threading.Lock()
        self._never = threading.Event()  # waited on for a tarpit's delay, never set
        self._names: dict[object, str] = {}

    def check(
        self, environ: WSGIEnvironment, path: str | None = None, read: Reader | None = None,
        can_edit: bool = False,
    ) -> Verdict:
        """``path`` and ``read`` default to the environ's (Django passes its own). A host that
        cannot rewrite the app's answer (``can_edit`` False) gets degrade/decoy as a refusal."""
        try:
            path = environ_path(environ) if path is None else path
            if path == _VERIFY_PATH:
                return Verdict(self._verify(environ, path, read))
            engine = self._view.engine
            ctx = self._context(engine, environ, path)
            if engine.needs_await:  # a networked store is atomic on its own side
                decision = engine.decide(ctx)
            else:
                with self._lock:
                    decision = engine.decide(ctx)
            if decision.action is Action.ALLOW:  # shield.policy is engine.policy, less a call
                tags = debug_tags(decision) if engine.policy.source.debug_headers else ()
                return Verdict(None, tags, None, ctx)
        except Exception:
            log.exception("shield failed before deciding; applying fail mode")
            return Verdict(_UNAVAILABLE) if self.shield.policy.source.fail_mode == "closed" else _PASS
        if decision.action in EDITED and can_edit:
            return Verdict(None, (), (ctx, decision))
        try:
            if decision.action is Action.TARPIT:
                self._never.wait(self.shield.policy.source.tarpit.delay)
            reply = decision_reply(self.shield.challenge, ctx, decision, _text(environ, "QUERY_STRING"))
        except Exception:
            log.exception("building the %s response failed", decision.action.value)
            reply = refusal(Decision(Action.BLOCK, decision.score, (), "error"), False)
        return Verdict(reply)

    def context(self, environ: WSGIEnvironment, path: str) -> RequestContext:
        return self._context(self._view.engine, environ, path)

    def _context(self, engine: EngineView, environ: WSGIEnvironment, path: str) -> RequestContext:
        contexts = engine.contexts
        ts = self.shield.clock.now()
        peer = _text(environ, "REMOTE_ADDR")
        method = _text(environ, "REQUEST_METHOD", "GET") or "GET"
        scheme = _text(environ, "wsgi.url_scheme", "http")
        # One pass over the environ once its keys are named (nearly always); else the long way,
        # which names them (environ_headers) and keeps what that pass leaves to it.
        ctx = contexts.from_environ(ts, peer, method, path, environ.items(), self._names, scheme)
        if ctx is None:
            ctx = contexts.build(ts, peer, method, path, environ_headers(environ, self._names), scheme)
        return ctx

    def _verify(self, environ: WSGIEnvironment, path: str, read: Reader | None) -> Reply:
        if _text(environ, "REQUEST_METHOD").upper() != "POST":
            return Reply(405, (("allow", "POST"), ("content-type", "text/plain")), b"method not allowed")
        body = read_body(environ, MAX_VERIFY_BODY, read)
        if isinstance(body, int):
            reason = b"too large" if body == 413 else b"bad request"
            return Reply(body, (("content-type", "text/plain"),), reason)
        ctx = self.context(environ, path)
        with self._lock:  # the challenge service's memory of used solutions
            return verify_reply(self.shield.challenge, ctx, body)


# -- the middleware ------------------------------------------------------------------------


class ScrapeshieldWSGI:
    """``app.wsgi_app = ScrapeshieldWSGI(app.wsgi_app, shield)`` (Flask), or around any WSGI app."""

    def __init__(self, app: WSGIApplication, shield: Shield) -> None:
        self.app = app
        self.shield = shield
        self.gate = Gate(shield)
        self._view: ShieldView = shield  # the engine, read as it is (hosts/view.py)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        verdict = self.gate.check(environ, can_edit=True)
        if verdict.reply is not None:
            return send_reply(start_response, verdict.reply)
        if verdict.edit is not None:
            return self._edited(environ, start_response, *verdict.edit)
        if verdict.allowed is not None:
            return self.app(environ, _Observer(start_response, self._view.engine, verdict.allowed,
                                               verdict.tags))
        if verdict.tags:
            return self.app(environ, _tagging(start_response, verdict.tags))
        return self.app(environ, start_response)


    def _edited(
        self, environ: WSGIEnvironment, start_response: StartResponse, ctx: RequestContext,
        decision: Decision,
    ) -> list[bytes]:
        """degrade/decoy: the app answers (unencoded), the shield rewrites the answer."""
        inner = {k: v for k, v in environ.items() if k != "HTTP_ACCEPT_ENCODING"}
        got: list[tuple[str, list[tuple[str, str]]]] = []

        def capture(
            status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
        ) -> Callable[[bytes], object]:
            got[:] = [(status, headers)]
            return chunks.append

        chunks: list[bytes] = []
        result = self.app(inner, capture)
        try:
            size = 0
            for chunk in result:
                size += len(chunk)
                if size > MAX_BODY:
                    break
                chunks.append(chunk)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        edited = None
        if got and size <= MAX_BODY:
            status_line, headers = got[0]
            try:
                edited = self.shield.editor.edit(
                    ctx, decision, int(status_line.split()[0]), list(headers), b"".join(chunks))
            except Exception:
                log.exception("rewriting the response for %s failed", decision.action.value)
        if edited is None:  # cannot rewrite it safely: the personal data does not leave
            refused = Decision(Action.BLOCK, decision.score, decision.reasons, decision.rule)
            return send_reply(start_response, refusal(refused, wants_json(ctx.headers, ctx.path)))
        start_response(status_line, edited[0])
        return [edited[1]]


def send_reply(start_response: StartResponse, reply: Reply) -> list[bytes]:
    line = _LINES.get(reply.status) or f"{reply.status} {HTTPStatus(reply.status).phrase}"
    headers = list(reply.headers)
    for name, _ in headers:
        if name == "content-length":
            break
    else:
        headers.append(("content-length", str(len(reply.body))))
    start_response(line, headers)
    return [reply.body]


@final
class _Observer:
    """The app's start_response on the allow path: tells the engine the answer's status (a 404
    share is behaviour) and adds the debug tags. A compiled class, not a closure: one object
    per request instead of a closure's function and cell, and a status read digit by digit."""

    __slots__ = ("engine", "start_response", "ctx", "tags")

    def __init__(
        self, start_response: StartResponse, engine: EngineView, ctx: RequestContext, tags: Headers,
    ) -> None:
        self.start_response = start_response
        self.engine = engine
        self.ctx = ctx
        self.tags = tags

    def __call__(
        self, status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        code = _status_code(status)
        if code >= 0:
            try:
                self.engine.observe(self.ctx, code)
            except Exception:  # ours: the app's answer goes out all the same
                log.exception("reporting the answer's status failed")
        tags = self.tags
        return self.start_response(status, [*headers, *tags] if tags else headers, exc_info)


def _status_code(status: str) -> int:
    """The three ASCII digits a status line starts with, as a number; -1 when it does not."""
    if len(status) < 3:
        return -1
    code: i64 = 0
    for i in range(3):
        digit: i64 = ord(status[i]) - 48
        if digit < 0 or digit > 9:
            return -1
        code = code * 10 + digit
    return code


def _tagging(start_response: StartResponse, tags: Headers) -> StartResponse:
    def tagged(
        status: str, headers: list[tuple[str, str]], exc_info: OptExcInfo | None = None, /
    ) -> Callable[[bytes], object]:
        return start_response(status, [*headers, *tags], exc_info)

    return tagged
