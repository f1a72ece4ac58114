"""The console's routes, mounted by the admin app under ``/console`` (never on the public port)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from scrapeshield.console import (
    pages_admin,
    pages_alerts,
    pages_auth,
    pages_cases,
    pages_drill,
    pages_legal,
    pages_overview,
)
from scrapeshield.console.web import PREFIX, Console

if TYPE_CHECKING:
    from scrapeshield.runtime import Shield

STATIC = Path(__file__).parent / "static"


def console_routes(shield: Shield, token: str) -> tuple[Console, list[BaseRoute]]:
    console = Console(shield, token)
    for module in (pages_auth, pages_overview, pages_drill, pages_cases, pages_alerts, pages_admin,
                   pages_legal):
        module.install(console)
    async def home(request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/", status_code=307)

    home.public = True  # type: ignore[attr-defined] # a redirect to the (guarded) overview
    entry = [Route("/", home), Route(PREFIX, home)]
    static = Mount(f"{PREFIX}/static", app=StaticFiles(directory=STATIC), name="console-static")
    static.public = True  # type: ignore[attr-defined] # stylesheet, script and the vendored chart library
    return console, [*entry, *console.routes, static]
