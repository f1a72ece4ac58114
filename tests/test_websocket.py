"""WebSocket handshakes are decided like requests, over a real uvicorn server and client."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from servers import CHROME_UA, free_port
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from scrapeshield.hosts.asgi import ScrapeshieldMiddleware
from scrapeshield.runtime import Shield
from scrapeshield.settings import Settings


async def echo(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(await websocket.receive_text())
    await websocket.close()


@pytest.fixture
def ws_url(tmp_path: Path) -> Iterator[str]:
    policy = tmp_path / "policy.yaml"
    policy.write_text("rules:\n  - {name: no-bots, match: {ua_regex: 'bot/'}, action: block}\n")
    shield = Shield(Settings.resolve(data_dir=str(tmp_path), policy_path=str(policy)))
    app = ScrapeshieldMiddleware(Starlette(routes=[WebSocketRoute("/ws", echo)]), shield)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    yield f"ws://127.0.0.1:{port}/ws"
    server.should_exit = True
    thread.join(timeout=10)
    shield.close()


def test_allowed_client_gets_its_socket(ws_url: str) -> None:
    with connect(ws_url, user_agent_header=CHROME_UA, additional_headers={"accept-language": "en"}) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"


def test_refused_client_gets_403_before_the_app(ws_url: str) -> None:
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url, user_agent_header="scraperbot/1.0", open_timeout=5)
    assert info.value.response.status_code == 403


def test_challenged_client_is_refused_too(ws_url: str) -> None:
    # An HTTP library scores a challenge; a socket cannot show the page, so it is refused.
    with pytest.raises(InvalidStatus) as info:
        connect(ws_url, user_agent_header="python-httpx/0.28.1", open_timeout=5)
    assert info.value.response.status_code == 403
