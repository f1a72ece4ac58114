"""The ASGI middleware in-process: it never raises into the host app, and each action's response."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route
from wsgi_apps.faults import FailingContexts

from scrapeshield.clock import monotonic
from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings

BROWSER = {
    "user-agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36",
    "accept-language": "en",
    "accept-encoding": "gzip",
    "accept": "text/html",
}


class Boom(Exception):
    pass


async def hello(request: Request) -> Response:
    return PlainTextResponse("hello from the app")


async def broken(request: Request) -> Response:
    raise Boom("the app's own bug")


def make(tmp_path: Path, policy: str = "") -> tuple[ScrapeshieldMiddleware, Shield]:
    path = tmp_path / "policy.yaml"
    path.write_text(policy)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(path)))
    app = Starlette(routes=[Route("/", hello), Route("/u/{name}", hello), Route("/broken", broken)])
    return ScrapeshieldMiddleware(app, shield), shield


def get(app: Any, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(path, headers=headers or BROWSER)

    return asyncio.run(go())


def test_allowed_request_untouched(tmp_path: Path) -> None:
    app, _ = make(tmp_path)
    response = get(app, "/")
    assert response.status_code == 200 and response.text == "hello from the app"
    assert "x-scrapeshield-action" not in response.headers


def test_debug_headers_tag_allowed_responses(tmp_path: Path) -> None:
    app, _ = make(tmp_path, "debug_headers: true\n")
    response = get(app, "/")
    assert response.headers["x-scrapeshield-action"] == "allow"
    assert "x-scrapeshield-score" in response.headers


@pytest.mark.parametrize("mode", ["open", "closed"])
def test_shield_failure_never_reaches_the_host(
    tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    app, shield = make(tmp_path, f"fail_mode: {mode}\n")

    monkeypatch.setattr(shield, "engine", FailingContexts(shield.engine))
    response = get(app, "/")
    if mode == "open":
        assert response.status_code == 200 and response.text == "hello from the app"
    else:
        assert response.status_code == 503 and response.headers["x-scrapeshield-action"] == "block"


def test_app_exceptions_stay_the_apps(tmp_path: Path) -> None:
    app, _ = make(tmp_path)
    with pytest.raises(Boom):
        get(app, "/broken")


def test_block_and_throttle_responses(tmp_path: Path) -> None:
    app, _ = make(
        tmp_path,
        "rules:\n"
        "  - {name: no-curl, match: {ua_regex: '^curl/'}, action: block}\n"
        "limits:\n"
        "  - {name: tiny, key: ip, window: 60, limit: 2}\n",
    )
    blocked = get(app, "/", {"user-agent": "curl/8.5.0"})
    assert blocked.status_code == 403 and blocked.headers["x-scrapeshield-action"] == "block"
    get(app, "/")
    throttled = get(app, "/")
    assert throttled.status_code == 429 and throttled.headers["x-scrapeshield-action"] == "throttle"
    assert int(throttled.headers["retry-after"]) >= 1


def test_json_clients_get_json_refusals(tmp_path: Path) -> None:
    app, _ = make(tmp_path, "rules:\n  - {name: no-curl, match: {ua_regex: '^curl/'}, action: block}\n")
    refused = get(app, "/", {"user-agent": "curl/8.5.0", "accept": "application/json"})
    assert refused.json()["action"] == "block"


def test_tarpit_answers_slowly(tmp_path: Path) -> None:
    app, _ = make(
        tmp_path,
        "tarpit: {delay: 0.3}\nrules:\n  - {name: slow, match: {ua_regex: '^slowpoke'}, action: tarpit}\n",
    )
    started = monotonic()
    response = get(app, "/", {"user-agent": "slowpoke/1"})
    assert monotonic() - started >= 0.3
    assert response.status_code == 429 and response.headers["x-scrapeshield-action"] == "tarpit"


def test_challenge_page_returns_to_the_full_url(tmp_path: Path) -> None:
    app, _ = make(tmp_path)
    response = get(app, "/u/someone?tab=posts", {"user-agent": "python-httpx/0.28"})
    assert response.status_code == 403 and response.headers["x-scrapeshield-action"] == "challenge"
    assert "/u/someone?tab=posts" in response.text


def test_verify_endpoint_rejects_bad_input(tmp_path: Path) -> None:
    app, _ = make(tmp_path)

    async def go() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app, client=("192.0.2.7", 5000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return [
                await client.get("/.scrapeshield/verify"),
                await client.post("/.scrapeshield/verify", content=b"token=x&solution=y"),
                await client.post("/.scrapeshield/verify", content=b"z" * 10_000),
                await client.post("/.scrapeshield/verify", content=bytes(range(256)) * 4),
                await client.post("/.scrapeshield/verify", content=b"&".join([b"a=1"] * 20)),
            ]

    get_, garbage, huge, binary, many = asyncio.run(go())
    assert get_.status_code == 405 and garbage.status_code == 403
    assert huge.status_code == 413 and binary.status_code == 403
    assert many.status_code == 400  # more fields than a solver sends: refused, not passed to the app


def test_lifespan_passes_through(tmp_path: Path) -> None:
    app, _ = make(tmp_path)
    seen: list[str] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        seen.append(scope["type"])

    middleware = ScrapeshieldMiddleware(inner, app.shield)
    asyncio.run(middleware({"type": "lifespan"}, None, None))  # type: ignore[arg-type]
    assert seen == ["lifespan"]
