"""Cases: list, one case, status and assignee, notes, links, hand-off to legal."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scrapeshield.console.cases import LINK_KINDS, STATUSES, Cases
from scrapeshield.console.web import PREFIX, Console


def install(console: Console) -> None:
    store = Cases(console.shield.db.engine)

    def case_id(request: Request) -> int:
        try:
            return int(request.path_params["case"])
        except ValueError:
            raise ValueError("a case number is a whole number") from None

    @console.route(f"{PREFIX}/cases", "view")
    async def case_list(request: Request) -> Response:
        status = request.query_params.get("status", "")
        if status not in STATUSES:
            status = ""
        return console.render(request, "cases.html", cases=store.all(status), status=status,
                              statuses=STATUSES)

    @console.route(f"{PREFIX}/cases/{{case}}", "view")
    async def case_page(request: Request) -> Response:
        case = store.get(case_id(request))
        if case is None:
            return console.error(request, 404, "no such case", True)
        return console.render(request, "case.html", case=case, statuses=STATUSES, link_kinds=LINK_KINDS,
                              users=[u.username for u in console.users.all() if not u.disabled])

    @console.route(f"{PREFIX}/cases/{{case}}/update", "case", methods=("POST",))
    async def case_update(request: Request) -> Response:
        cid = case_id(request)
        form = await request.form()
        changed = store.change(cid, console.now(), status=str(form["status"]) if "status" in form else None,
                               assignee=str(form["assignee"]) if "assignee" in form else None)
        changed.pop("updated_at", None)
        console.audit(request, "case.update", {"case": cid, **changed})
        return console.back(f"{PREFIX}/cases/{cid}", "case updated")

    @console.route(f"{PREFIX}/cases/{{case}}/note", "note", methods=("POST",))
    async def case_note(request: Request) -> Response:
        cid = case_id(request)
        form = await request.form()
        text = str(form.get("text", ""))
        store.note(cid, request.state.session.username, text, console.now())
        console.audit(request, "case.note", {"case": cid, "chars": len(text.strip())})
        return console.back(f"{PREFIX}/cases/{cid}", "note added")

    @console.route(f"{PREFIX}/cases/{{case}}/link", "case", methods=("POST",))
    async def case_link(request: Request) -> Response:
        cid = case_id(request)
        form = await request.form()
        kind, ref = str(form.get("kind", "")), str(form.get("ref", ""))
        added = store.link(cid, kind, ref)
        if added:
            console.audit(request, "case.link", {"case": cid, "kind": kind, "ref": ref.strip()[:64]})
        return console.back(f"{PREFIX}/cases/{cid}", "linked" if added else "already linked")

    @console.route(f"{PREFIX}/cases/{{case}}/handoff", "case", methods=("POST",))
    async def case_handoff(request: Request) -> Response:
        cid = case_id(request)
        store.hand_to_legal(cid, console.now())
        console.audit(request, "case.handoff", {"case": cid})
        return console.back(f"{PREFIX}/cases/{cid}", "handed to legal")
