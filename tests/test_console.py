"""Console workflows through the real app (in-process): cases from opening to legal, what each
role may do, search by a raw IP, users and policy administration, the first admin, evidence
export, JSON logs and the console's metrics."""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_client import client, csrf_of, make_shield, sign_in
from sqlalchemy import insert

from scrapeshield.console.users import ADMIN_PASSWORD_ENV, Users
from scrapeshield.db.models import CampaignMemberRow, CampaignRow
from scrapeshield.logjson import JsonFormatter
from scrapeshield.runtime import Shield
from scrapeshield.testing.db import event


@pytest.fixture
def shield(tmp_path: Path) -> Iterator[Shield]:
    s = make_shield(tmp_path)
    yield s
    s.close()


def add_campaign(shield: Shield, cid: str = "cmp-test1",
                 members: tuple[str, ...] = ("p:a", "p:b", "p:c")) -> None:
    now = shield.clock.now()
    with shield.db.engine.begin() as conn:
        conn.execute(insert(CampaignRow).values(
            id=cid, kind="fingerprint", key="fp-shared", label="fingerprint fp-shared",
            first_seen=now - 600, last_seen=now - 10, clients=len(members), requests=300, records=250,
            score=88.0, status="active", action="", reasons='["3 clients share one fingerprint"]',
            updated_at=now))
        for m in members:
            conn.execute(insert(CampaignMemberRow).values(
                campaign_id=cid, client=m, first_seen=now - 600, last_seen=now - 10, requests=100,
                records=80, accounts="[]"))
    shield.db.write_events([event(i, ts=now - 100 + i, client=members[i % len(members)],
                                  fingerprint="fp-shared", uid=f"c-{i}") for i in range(30)])


def test_a_case_from_opening_to_legal(shield: Shield) -> None:
    add_campaign(shield)
    with client(shield) as analyst, client(shield) as legal:
        assert sign_in(analyst, "analyst1").status_code == 303
        token = csrf_of(analyst)
        opened = analyst.post("/console/cases/open", follow_redirects=False, data={
            "csrf": token, "title": "Fingerprint fp-shared", "campaign": "cmp-test1"})
        case = opened.headers["location"].split("?")[0]
        assert case == "/console/cases/1"
        for data in ({"status": "investigating", "assignee": "analyst1"}, {"status": "mitigated"}):
            assert analyst.post(case + "/update", data={"csrf": token, **data},
                                follow_redirects=False).status_code == 303
        assert analyst.post(case + "/update", data={"csrf": token, "status": "bogus"}).status_code == 400
        analyst.post(case + "/note", data={"csrf": token, "text": "Blocked the fingerprint for 24 h."})
        analyst.post(case + "/link", data={"csrf": token, "kind": "client", "ref": "p:a"})
        handed = analyst.post(case + "/handoff", data={"csrf": token}, follow_redirects=False)
        assert handed.status_code == 303
        page = analyst.get(case).text
        assert "mitigated" in page and "with legal since" in page and "Blocked the fingerprint" in page
        assert 'href="/console/clients/p:a"' in page and 'href="/console/campaigns/cmp-test1"' in page

        assert sign_in(legal, "legal1").status_code == 303
        legal_token = csrf_of(legal)
        assert "Fingerprint fp-shared" in legal.get("/console/legal").text  # handed-off cases
        # legal counsel writes notes, but changes no status and no list
        assert legal.post(case + "/note", data={"csrf": legal_token, "text": "C&D letter drafted"},
                          follow_redirects=False).status_code == 303
        assert legal.post(case + "/update", data={"csrf": legal_token, "status": "closed"}).status_code == 403
        assert legal.post("/console/campaigns/cmp-test1/act", data={
            "csrf": legal_token, "action": "block", "ttl": "1h", "reason": "x"}).status_code == 403
        trail = [(e["actor"], e["action"]) for e in shield.db.audit_trail(50)]
        for expected in [("analyst1", "case.open"), ("analyst1", "case.update"), ("analyst1", "case.note"),
                         ("analyst1", "case.link"), ("analyst1", "case.handoff"), ("legal1", "case.note")]:
            assert expected in trail
        assert legal.get("/console/audit").status_code == 200
        assert analyst.get("/console/audit", headers={"accept": "text/html"}).status_code == 403


def test_acting_on_a_campaign_lists_its_fingerprint_in_the_running_engine(shield: Shield) -> None:
    add_campaign(shield)
    with client(shield) as c:
        sign_in(c, "analyst1")
        token = csrf_of(c)
        assert c.post("/console/campaigns/cmp-test1/act", data={"csrf": token, "action": "block", "ttl": "1h",
                                                                "reason": ""}).status_code == 400
        done = c.post("/console/campaigns/cmp-test1/act", data={
            "csrf": token, "action": "block", "ttl": "1h", "reason": "enumeration"}, follow_redirects=False)
        assert done.status_code == 303
    entries = {(e.kind, e.value): e for e in shield.engine.lists.entries()}
    entry = entries[("fingerprint", "fp-shared")]
    assert entry.action.value == "block" and entry.created_by == "analyst1"
    assert entry.expires == pytest.approx(shield.clock.now() + 3600)
    assert any(e.value == "fp-shared" for e in shield.db.live_list_entries(shield.clock.now()))


def test_search_pseudonymises_an_ip_like_the_events(shield: Shield) -> None:
    ip = "203.0.113.77"
    pseudonym = shield.pseudonymise(ip)
    now = shield.clock.now()
    shield.db.write_events([event(1, ts=now - 5, client=pseudonym, account="alice", uid="s-1"),
                            event(2, ts=now - 4, client="p:someone-else", fingerprint="fpX", uid="s-2")])
    with client(shield) as c:
        sign_in(c, "legal1")
        by_ip = c.get("/console/search", params={"q": ip}).text
        assert pseudonym in by_ip and ip not in by_ip.split("</form>", 2)[-1].replace(f'value="{ip}"', "")
        assert pseudonym in c.get("/console/search", params={"q": "alice"}).text
        assert "p:someone-else" in c.get("/console/search", params={"q": "fpX"}).text
        assert "no client" in c.get("/console/search", params={"q": "198.51.100.1"}).text


def test_admins_manage_users_and_a_changed_role_signs_out(shield: Shield) -> None:
    with client(shield) as admin, client(shield) as analyst:
        sign_in(admin, "admin1")
        sign_in(analyst, "analyst1")
        token = csrf_of(admin)
        assert admin.post("/console/users/add", data={"csrf": token, "username": "dpo", "role": "legal",
                                                      "password": "short"}).status_code == 400
        assert admin.post("/console/users/add", data={"csrf": token, "username": "dpo", "role": "legal",
                                                      "password": "a long password"},
                          follow_redirects=False).status_code == 303
        assert admin.post("/console/users/analyst1/update", data={"csrf": token, "role": "legal"},
                          follow_redirects=False).status_code == 303
        assert analyst.get("/console/", follow_redirects=False).status_code == 303  # signed out
        assert Users(shield.db.engine).get("analyst1").role.value == "legal"  # type: ignore[union-attr]
        reloaded = admin.post("/console/policy/reload", data={"csrf": token}, follow_redirects=False)
        assert reloaded.status_code == 303
    actions = [e["action"] for e in shield.db.audit_trail(20)]
    assert {"user.add", "user.update", "policy.reload"} <= set(actions)


def test_signing_out_ends_the_session(shield: Shield) -> None:
    with client(shield) as c:
        sign_in(c, "admin1")
        token = csrf_of(c)
        assert c.post("/console/logout", data={"csrf": token}, follow_redirects=False).status_code == 303
        assert c.get("/console/api/overview").status_code == 401


def test_evidence_export_is_a_signed_pack_and_audited(shield: Shield) -> None:
    add_campaign(shield)
    with client(shield) as c:
        sign_in(c, "legal1")
        response = c.post("/console/legal/export", data={"csrf": csrf_of(c), "campaign": "cmp-test1"})
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    import io
    import zipfile

    names = zipfile.ZipFile(io.BytesIO(response.content)).namelist()
    assert {"manifest.json", "manifest.sig", "ledger.jsonl"} <= set(names)
    export = next(e for e in shield.db.audit_trail(10) if e["action"] == "export")
    assert export["actor"] == "legal1" and export["detail"]["campaign"] == "cmp-test1"


def test_the_first_admin_is_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from scrapeshield.db.store import Database

    db = Database(f"sqlite:///{tmp_path / 'a.db'}")
    users = Users(db.engine)
    generated = users.ensure_first_admin(1.0)
    assert generated and len(generated) >= 16
    assert users.sign_in("admin", generated, 2.0).outcome.value == "ok"
    assert users.ensure_first_admin(3.0) is None  # there are users now: nothing made or printed
    db.close()
    monkeypatch.setenv(ADMIN_PASSWORD_ENV, "from the environment")
    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    users = Users(db.engine)
    assert users.ensure_first_admin(1.0) is None  # taken from the environment, nothing to print
    assert users.sign_in("admin", "from the environment", 2.0).outcome.value == "ok"
    stored = users.engine.connect().exec_driver_sql("select password from console_users").scalar()
    assert str(stored).startswith("$argon2id$")
    db.close()


def test_users_cli(tmp_path: Path) -> None:
    def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
        command = [sys.executable, "-m", "scrapeshield", "users", *args, "--data-dir", str(tmp_path)]
        return subprocess.run(command, input=stdin, capture_output=True, text=True, timeout=60)

    added = cli("add", "carol", "--role", "legal", "--password-stdin", stdin="a long password\n")
    assert added.returncode == 0
    assert "carol\tlegal\tactive" in cli("list").stdout
    bad = cli("add", "carol", "--password-stdin", stdin="another long one\n")
    assert bad.returncode == 1 and "exists already" in bad.stderr and "Traceback" not in bad.stderr
    assert cli("passwd", "carol", "--password-stdin", stdin="a new long password\n").returncode == 0


def test_json_logs_carry_the_extra_fields() -> None:
    record = logging.LogRecord("scrapeshield.console", logging.INFO, __file__, 1, "console action %s",
                               ("list.add",), None)
    record.actor = "analyst1"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "console action list.add" and line["actor"] == "analyst1"
    assert line["level"] == "info" and line["logger"] == "scrapeshield.console" and "T" in line["ts"]


def test_metrics_include_the_console_figures(shield: Shield) -> None:
    with client(shield) as c:
        sign_in(c, "admin1")
        sign_in(c, "admin1", "wrong password!")
        text = c.get("/metrics").text
    assert re.search(r'^scrapeshield_console_signins_total\{outcome="ok"\} 1\.0$', text, re.M)
    assert re.search(r'^scrapeshield_console_signins_total\{outcome="wrong"\} 1\.0$', text, re.M)
    for name in ("scrapeshield_records_served_distinct_minute", "scrapeshield_alerts_raised_total",
                 "scrapeshield_alert_deliveries_total", "scrapeshield_alert_delivery_failures_total"):
        assert re.search(rf"^{name} ", text, re.M), name


def test_the_legal_section_lists_incidents_with_deadlines(shield: Shield) -> None:
    from scrapeshield.db.models import BreachIncidentRow

    now = shield.clock.now()
    assessment = {"jurisdictions": [
        {"id": "uk", "authority": {"status": "required", "deadline": now + 36 * 3600, "target": None},
         "individuals": {"status": "not-required", "deadline": None, "target": None}},
        {"id": "au", "authority": {"status": "required", "deadline": None, "target": now + 30 * 86400},
         "individuals": {"status": "required", "deadline": None, "target": None}},
    ]}
    with shield.db.engine.begin() as conn:
        conn.execute(insert(BreachIncidentRow).values(
            id="inc-1", source="campaign cmp-test1", start=now - 7200, end=now - 3600, aware_at=now - 3600,
            created_at=now, created_by="dpo", subjects=4200, next_deadline=now + 36 * 3600,
            assessment=json.dumps(assessment)))
    with client(shield) as c:
        sign_in(c, "legal1")
        page = c.get("/console/legal").text
    assert "inc-1" in page and "4200" in page
    assert f'data-deadline="{now + 36 * 3600}"' in page  # counted down in the browser
    assert "uk → authority (required)" in page and "au → individuals (required)" in page
