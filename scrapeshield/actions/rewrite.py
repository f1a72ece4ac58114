"""Applying degrade and decoy to the application's response (the hosts call ``edit``).

A host that can see the response body (ASGI middleware, and so the reverse proxy; WSGI
middleware) lets the application answer, asks for an unencoded body (it drops the
request's Accept-Encoding), and hands status, headers and body here. What cannot be
rewritten safely (a compressed or oversized body, an unknown format on a route with
personal fields) is refused rather than let through: the decision said the personal
data must not leave as it is. Decoys are served only on record routes, for answers that
carried the record (2xx); elsewhere ``decoy`` degrades.
"""

from __future__ import annotations

from collections.abc import Callable

from scrapeshield.actions.canaries import CanaryLog, Planted
from scrapeshield.actions.challenge import ChallengeService
from scrapeshield.actions.decoy import DecoyMaker, normalise_canary
from scrapeshield.actions.degrade import (
    MAX_BODY,
    Replace,
    removed,
    rewrite_html,
    rewrite_json,
    selectors,
)
from scrapeshield.actions.hold import held, placeholder, with_proof
from scrapeshield.actions.responses import ACTION_HEADER
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.types import Action, Decision, RequestContext

Headers = list[tuple[str, str]]
EDITED = frozenset((Action.DEGRADE, Action.DECOY))
_DROPPED = frozenset(("content-length", "etag", "content-md5", "last-modified", ACTION_HEADER))


class ResponseEditor:
    def __init__(
        self, policy: Callable[[], CompiledPolicy], maker: DecoyMaker, canaries: CanaryLog,
        pseudonymise: Callable[[str], str],
        challenge: Callable[[], ChallengeService] | None = None,
    ) -> None:
        self._policy = policy
        self._challenge = challenge  # for held pages (actions/hold.py)
        self.maker = maker
        self.canaries = canaries
        self._pseudonymise = pseudonymise
        self.decoys = 0
        self.degraded = 0

    def edit(
        self, ctx: RequestContext, decision: Decision, status: int, headers: Headers, body: bytes
    ) -> tuple[Headers, bytes] | None:
        """The response to send instead, or None: refuse it (it cannot be rewritten safely)."""
        route = (self._policy().routes_by_name or {}).get(ctx.route)
        fields = route.personal_fields if route is not None else ()
        html_fields = route.html_fields if route is not None else ()
        action = decision.action
        if action is Action.DECOY and not (ctx.record and 200 <= status < 300):
            action = Action.DEGRADE
        kind = _header(headers, "content-type").split(";")[0].strip().lower()
        encoding = _header(headers, "content-encoding").strip().lower()
        if (fields or html_fields) and 200 <= status < 300:
            if encoding not in ("", "identity") or len(body) > MAX_BODY:
                return None
            replace: Replace | None = None
            if action is Action.DECOY:
                replace = self._decoy(ctx)
            if kind.endswith("json"):
                edited = rewrite_json(body, fields, replace)
                if edited is None:
                    return None
                body = edited
            elif kind in ("text/html", "application/xhtml+xml"):
                charset = "utf-8"
                text = body.decode(charset, "replace")
                if held(decision) and self._challenge is not None:
                    text = with_proof(rewrite_html(text, selectors(html_fields), placeholder),
                                      self._challenge(), ctx)
                    body = text.encode(charset)
                else:
                    body = rewrite_html(text, selectors(html_fields), replace or removed).encode(charset)
            elif body:
                return None  # a format we cannot read might carry the fields
        if action is Action.DECOY:
            self.decoys += 1
        else:
            self.degraded += 1
        out = [(k, v) for k, v in headers if k.lower() not in _DROPPED]
        out += [(ACTION_HEADER, action.value), ("content-length", str(len(body)))]
        if not any(k.lower() == "cache-control" for k, _ in out):
            out.append(("cache-control", "private, no-store"))
        return out, body

    def _decoy(self, ctx: RequestContext) -> Replace:
        client = self._pseudonymise(ctx.ip)
        fake = self.maker.record(client, ctx.record)
        network = self._pseudonymise(ctx.network)
        for value, kind in ((fake.email, "email"), (fake.phone, "phone")):
            self.canaries.add(Planted(
                normalise_canary(value), kind, client, network, ctx.fingerprint, ctx.account,
                ctx.record, ctx.route, ctx.user_agent[:512], ctx.ts,
            ))
        return fake.value


def _header(headers: Headers, name: str) -> str:
    for key, value in headers:
        if key.lower() == name:
            return value
    return ""
