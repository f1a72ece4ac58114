"""hold: a page read that only its build's campaign doubts is shown at once, its personal
fields held back until the page's own script has proved a browser.

On its first request a person who opens a profile directly (a link tapped in a messaging
app, a bookmark) looks exactly like one hop of a fleet on rotating addresses that copies
their browser build: no referer, no asset loaded yet, nothing of its own. What tells
them apart follows the first response: a browser runs the page's script, a fleet's
HTTP client does not. So when a record page's challenge comes from the campaign signals
alone (the client's own score, without them, calls for nothing), the engine answers
``degrade`` under the rule ``hold``: the application's page is served with its personal
fields replaced by a placeholder, and carries the challenge's proof of work with
challenge.js, which solves it in the background and posts it. The pass cookie comes
back and the browser reloads the page whole. The proof, its binding and its replay
protection are the challenge's own; only the interstitial is gone. A fleet hop gets the
page without the fields, as if degraded.

Hosts that cannot rewrite a response (auth_request, a WSGI server without a rewritable
body) answer a held decision with the challenge page (``held``).
"""

from __future__ import annotations

import json
import re
from functools import cache
from importlib import resources

from scrapeshield.actions.challenge import VERIFY_PATH, ChallengeService
from scrapeshield.actions.responses import HOLD_RULE
from scrapeshield.decide import by_score
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.score import score
from scrapeshield.types import Action, Decision, RequestContext, Signal

CAMPAIGN_SIGNALS = frozenset({"campaign.fingerprint", "campaign.network"})
PLACEHOLDER = "…"
_DATA = re.compile(rb'<script type="application/json" id="ss-challenge">(.*?)</script>', re.S)
_BODY_END = re.compile(r"</body\s*>", re.I)
_JSON_ESCAPES = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def held(decision: Decision) -> bool:
    """Whether the decision holds a page for its script (hosts that cannot rewrite challenge)."""
    return decision.rule == HOLD_RULE


def hold(policy: CompiledPolicy, ctx: RequestContext, decision: Decision, signals: list[Signal]) -> Decision:
    """``decision`` (a challenge of a record read), or the held ``degrade`` that replaces it."""
    if decision.rule != "score" or not policy.source.detection.campaigns.hold_pages:
        return decision
    if ctx.method != "GET" or not _navigation(ctx.headers):
        return decision
    route = (policy.routes_by_name or {}).get(ctx.route)
    if route is None or not route.html_fields:  # only a page can carry the script
        return decision
    doubted = [s.name for s in signals if s.name in CAMPAIGN_SIGNALS]
    if not doubted:
        return decision
    own, _ = score([s for s in signals if s.name not in CAMPAIGN_SIGNALS])
    if by_score(policy, own, True) is not Action.ALLOW:  # doubted for itself too: the challenge
        return decision
    why = (f"held for the page's script: only {', '.join(doubted)} doubted it "
           f"(scores {own:g} without)")
    return Decision(Action.DEGRADE, decision.score, (*decision.reasons, why), HOLD_RULE, 0.0,
                    decision.client)


def _navigation(headers: tuple[tuple[str, str], ...]) -> bool:
    """A top-level page load: Sec-Fetch-Mode navigate, or (older browsers) HTML accepted."""
    mode = accept = ""
    for name, value in headers:
        if name == "sec-fetch-mode":
            mode = value
        elif name == "accept":
            accept = value
    return mode == "navigate" if mode else "text/html" in accept


def placeholder(field: str, old: str) -> str:
    """What a held field shows until the page's script brings the real one."""
    return "data:," if old.startswith(("/", "http", "data:")) else PLACEHOLDER


def with_proof(html: str, challenge: ChallengeService, ctx: RequestContext) -> str:
    """The held page with the challenge's proof of work and its script (solved, posted and
    reloaded by challenge.js), and a note for a browser without scripts."""
    return_to = ctx.path + ("?" + ctx.query if ctx.query else "")
    found = _DATA.search(challenge.page(ctx.ip, ctx.user_agent, return_to))
    if found is None:  # the challenge page changed shape: show the held page as it is
        return html
    data = json.loads(found.group(1))
    script = _script()
    block = (
        '<noscript><p class="scrapeshield-held">Some details of this profile are shown once '
        "JavaScript is on.</p></noscript>"
        f'<form id="ss-form" method="post" action="{VERIFY_PATH}" hidden>'
        '<input type="hidden" name="token" value=""><input type="hidden" name="solution" value="">'
        '<input type="hidden" name="return_to" value=""></form>'
        '<script type="application/json" id="ss-challenge">'
        f"{json.dumps(data, ensure_ascii=True).translate(_JSON_ESCAPES)}</script>"
        f"<script>{script}</script>"
    )
    at = max((m.start() for m in _BODY_END.finditer(html)), default=len(html))  # the last </body>
    return html[:at] + block + html[at:]


@cache
def _script() -> str:
    """challenge.js, as the challenge page inlines it (it holds no '</')."""
    return (resources.files("scrapeshield.actions") / "challenge.js").read_text("utf-8")
