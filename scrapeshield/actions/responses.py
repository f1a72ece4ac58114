"""Stage 5: the responses for decisions that do not let a request through unchanged.

Plain bytes and header lists so every host form (ASGI, WSGI, proxy, decision
service) can send them its own way.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Final, NamedTuple
from urllib.parse import parse_qsl

from scrapeshield.actions.challenge import ChallengeService
from scrapeshield.types import Action, Decision, RequestContext, tuple_new

log = logging.getLogger("scrapeshield.actions")
Headers = tuple[tuple[str, str], ...]

ACTION_HEADER = "x-scrapeshield-action"
SIGN_IN_WALL = "privacy:signed-in"  # the rule of a sign-in wall decision (privacy.WALL)
HOLD_RULE = "hold"  # a page held for its script (actions/hold.py): a host that cannot rewrite challenges


_CHALLENGE = Action.CHALLENGE  # a module constant: an Enum class attribute is a slow lookup


class Reply(NamedTuple):
    """A response as plain values (immutable: a tuple, made per challenged request)."""

    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


_REPLY: Final = Reply  # (compiled: a C global; built with tuple_new, see types.tuple_new)
# A challenge reply's headers, the same but for the page's length: one tuple per length (a
# page's length varies with its path alone), kept until there are too many lengths.
_CHALLENGE_HEADERS: dict[int, Headers] = {}
_CHALLENGE_HEADERS_MAX: Final = 4096


_MESSAGES = {
    Action.THROTTLE: (429, "Too many requests. Slow down and try again later."),
    Action.BLOCK: (403, "Access denied. Automated collection of personal data is not permitted."),
    Action.TARPIT: (429, "Too many requests."),
}


def refusal(decision: Decision, wants_json: bool) -> Reply:
    """The response for throttle, block and tarpit (after its delay)."""
    status, message = _MESSAGES.get(decision.action, _MESSAGES[Action.BLOCK])
    if decision.rule == SIGN_IN_WALL:  # a user's privacy level: signed-in readers only
        status, message = 401, "This profile is visible to signed-in members only. Please sign in."
    elif decision.action in (Action.DEGRADE, Action.DECOY):  # a host that cannot rewrite answers
        message = "This profile is not available to this client."
    headers: list[tuple[str, str]] = [
        (ACTION_HEADER, decision.action.value),
        ("cache-control", "no-store"),
    ]
    if status == 429:
        headers.append(("retry-after", str(max(1, math.ceil(decision.retry_after or 1)))))
    if wants_json:
        body = json.dumps({"error": message, "action": decision.action.value}).encode()
        headers.append(("content-type", "application/json"))
    else:
        body = (
            f"<!doctype html><meta charset=utf-8><title>scrapeshield</title><h1>{status}</h1><p>{message}</p>"
        ).encode()
        headers.append(("content-type", "text/html; charset=utf-8"))
    headers.append(("content-length", str(len(body))))
    return Reply(status, tuple(headers), body)


def challenge_reply(page: bytes) -> Reply:
    size = len(page)
    headers = _CHALLENGE_HEADERS.get(size)
    if headers is None:
        headers = (
            (ACTION_HEADER, "challenge"),
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("content-length", str(size)),
        )
        if len(_CHALLENGE_HEADERS) >= _CHALLENGE_HEADERS_MAX:
            _CHALLENGE_HEADERS.clear()
        _CHALLENGE_HEADERS[size] = headers
    return tuple_new(_REPLY, (403, headers, page))


def wants_json(headers: tuple[tuple[str, str], ...], path: str) -> bool:
    if path.startswith("/api/"):
        return True
    accept = next((v for n, v in headers if n == "accept"), "")
    return "json" in accept and "html" not in accept


# -- what a host answers: the same for ASGI, WSGI and the decision service ----------


def decision_reply(challenge: ChallengeService, ctx: RequestContext, decision: Decision, query: str) -> Reply:
    """The reply for a decision other than allow (a tarpit's delay is the host's to wait)."""
    if decision.action is _CHALLENGE or decision.rule == HOLD_RULE:  # held: no page to hold
        return_to = ctx.path if ctx.method in ("GET", "HEAD") else "/"
        if query and ctx.method in ("GET", "HEAD"):
            return_to += "?" + query
        return challenge_reply(challenge.page(ctx.ip, ctx.user_agent, return_to))
    return refusal(decision, wants_json(ctx.headers, ctx.path))


def verify_reply(challenge: ChallengeService, ctx: RequestContext, body: bytes) -> Reply:
    """A solved challenge's form: the pass cookie and the way back, or why not."""
    try:
        form = dict(parse_qsl(body.decode("latin-1"), max_num_fields=8))
    except ValueError:  # more fields than a solver sends
        return Reply(400, (("content-type", "text/plain"),), b"bad request")
    result = challenge.verify(form, ctx.ip, ctx.user_agent)
    if not result.ok or result.pass_cookie is None:
        log.info("challenge verification refused: %s", result.reason)
        return Reply(
            403,
            ((ACTION_HEADER, "challenge"), ("content-type", "text/plain")),
            f"challenge not passed: {result.reason}".encode(),
        )
    cookie = challenge.cookie_header(result.pass_cookie, ctx.scheme == "https")
    return Reply(
        303, (("location", result.return_to), ("set-cookie", cookie), ("cache-control", "no-store")), b""
    )


def debug_tags(decision: Decision) -> Headers:
    return ((ACTION_HEADER, decision.action.value), ("x-scrapeshield-score", f"{decision.score:g}"))
