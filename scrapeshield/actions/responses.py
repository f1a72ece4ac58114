"""Stage 5: the responses for decisions that do not let a request through unchanged.

Plain bytes and header lists so every host form (ASGI, WSGI, proxy, decision
service) can send them its own way.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass

from scrapeshield.types import Action, Decision

ACTION_HEADER = "x-scrapeshield-action"


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


_MESSAGES = {
    Action.THROTTLE: (429, "Too many requests. Slow down and try again later."),
    Action.BLOCK: (403, "Access denied. Automated collection of personal data is not permitted."),
    Action.TARPIT: (429, "Too many requests."),
}


def refusal(decision: Decision, wants_json: bool) -> Reply:
    """The response for throttle, block and tarpit (after its delay)."""
    status, message = _MESSAGES.get(decision.action, _MESSAGES[Action.BLOCK])
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
            "<!doctype html><meta charset=utf-8><title>scrapeshield</title>"
            f"<h1>{status}</h1><p>{message}</p>"
        ).encode()
        headers.append(("content-type", "text/html; charset=utf-8"))
    headers.append(("content-length", str(len(body))))
    return Reply(status, tuple(headers), body)


def challenge_reply(page: bytes) -> Reply:
    return Reply(
        403,
        (
            (ACTION_HEADER, Action.CHALLENGE.value),
            ("content-type", "text/html; charset=utf-8"),
            ("cache-control", "no-store"),
            ("content-length", str(len(page))),
        ),
        page,
    )


def wants_json(headers: tuple[tuple[str, str], ...], path: str) -> bool:
    if path.startswith("/api/"):
        return True
    accept = next((v for n, v in headers if n == "accept"), "")
    return "json" in accept and "html" not in accept
