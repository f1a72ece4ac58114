"""The share of 404s: the hosts report the application's status after the response, and the
engine counts it at the client's next decision (ASGI and WSGI middleware)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Iterator
from pathlib import Path
from wsgiref.types import StartResponse, WSGIEnvironment

import httpx
import pytest
import yaml
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from scrapeshield.clock import ManualClock
from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
from scrapeshield.hosts.wsgi import ScrapeshieldWSGI
from scrapeshield.policy.loader import default_policy_text
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings
from scrapeshield.signals.catalog import SIGNALS
from scrapeshield.types import Decision, RequestContext

BROWSER = {"user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                         "Chrome/126.0.0.0 Safari/537.36", "accept-language": "en", "accept": "*/*",
           "accept-encoding": "gzip", "referer": "http://testserver/"}


@pytest.fixture()
def shield(tmp_path: Path) -> Iterator[Shield]:
    """The default policy, with the other behaviour signals weighed 0: this is about 404s."""
    data = yaml.safe_load(default_policy_text())
    data["weights"] = {name: 0 for name in SIGNALS if name.startswith(("behaviour.", "headers."))
                       and name != "behaviour.not-found"}
    policy = tmp_path / "policy.yaml"
    policy.write_text(yaml.safe_dump(data))
    clock = ManualClock(1_000_000.0)
    made = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(policy)), clock)
    yield made
    made.close()


def _reasons(shield: Shield) -> list[list[str]]:
    seen: list[list[str]] = []

    def listen(ctx: RequestContext, decision: Decision) -> None:
        seen.append([r.split(" ")[0] for r in decision.reasons])

    shield.engine.listeners.append(listen)
    return seen


async def _existing(request: Request) -> PlainTextResponse:
    name = request.path_params["name"]
    return PlainTextResponse("a profile", 200 if name.startswith("real") else 404)


def test_asgi_reports_not_found_answers(shield: Shield) -> None:
    app = ScrapeshieldMiddleware(Starlette(routes=[Route("/u/{name}", _existing)]), shield)
    seen = _reasons(shield)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app, client=("198.51.100.3", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for i in range(40):
                assert isinstance(shield.clock, ManualClock)
                shield.clock.advance(5 + i % 3)
                await client.get(f"/u/guess{i}" if i % 4 else f"/u/real{i}", headers=BROWSER)

    asyncio.run(run())
    assert "behaviour.not-found" not in seen[5]
    assert "behaviour.not-found" in seen[-1]


def test_wsgi_reports_not_found_answers(shield: Shield) -> None:
    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        found = environ["PATH_INFO"].startswith("/u/real")
        start_response("200 OK" if found else "404 Not Found", [("content-type", "text/plain")])
        return [b"x"]

    seen = _reasons(shield)
    wrapped = ScrapeshieldWSGI(app, shield)
    with httpx.Client(transport=httpx.WSGITransport(app=wrapped, remote_addr="198.51.100.4"),
                      base_url="http://testserver") as client:
        for i in range(40):
            assert isinstance(shield.clock, ManualClock)
            shield.clock.advance(5 + i % 3)
            client.get(f"/u/guess{i}" if i % 4 else f"/u/real{i}", headers=BROWSER)
    assert "behaviour.not-found" in seen[-1]
    people = [client_seen for client_seen in seen[:10]]
    assert all("behaviour.not-found" not in r for r in people)
