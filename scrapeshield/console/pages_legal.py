"""The legal section: cases handed to legal, breach incidents with their deadlines counting
down, and the evidence export of a campaign (``scrapeshield.legal``), audited as ``export``."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from scrapeshield.console import campaigns
from scrapeshield.console.cases import Cases
from scrapeshield.console.web import PREFIX, Console


def _incidents(console: Console) -> tuple[list[dict[str, Any]], str]:
    try:
        from scrapeshield.legal.incidents import list_incidents
    except ImportError as exc:  # the legal extras are optional: the rest of the page still works
        return [], f"breach incidents are not available here ({exc})"
    return list_incidents(console.shield.db, console.now()), ""


def install(console: Console) -> None:
    shield = console.shield

    @console.route(f"{PREFIX}/legal", "export")
    async def legal_page(request: Request) -> Response:
        incidents, problem = _incidents(console)
        return console.render(request, "legal.html", incidents=incidents, problem=problem,
                              cases=Cases(shield.db.engine).all(legal=True),
                              campaigns=campaigns.recent(shield.db, limit=50), now=console.now())

    @console.route(f"{PREFIX}/legal/export", "export", methods=("POST",))
    async def export(request: Request) -> Response:
        form = await request.form()
        cid = str(form.get("campaign", ""))[:40]
        if campaigns.get(shield.db, cid) is None:
            return console.error(request, 404, f"no campaign {cid}", True)
        from scrapeshield.legal.errors import LegalError
        from scrapeshield.legal.evidence import export_pack
        from scrapeshield.legal.keys import load_or_create

        def pack() -> tuple[dict[str, Any], bytes]:
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / f"evidence-{cid}.zip"
                info = export_pack(shield.db, cid, path, load_or_create(shield.settings.data_dir),
                                   policy=shield.policy, clock=shield.clock)
                return info, path.read_bytes()

        try:
            info, data = await run_in_threadpool(pack)  # signing and zipping: off the shared loop
        except LegalError as exc:
            return console.error(request, 409, str(exc), True)
        console.audit(request, "export", {"campaign": cid, "entries": info.get("entries"),
                                          "head_hash": info.get("head_hash"),
                                          "manifest_sha256": info.get("files", {}).get("facts.json")})
        return Response(data, media_type="application/zip", headers={
            "content-disposition": f'attachment; filename="evidence-{cid}.zip"'})
