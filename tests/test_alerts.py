"""Alert rules raise each condition once, and deliveries reach a real local HTTP receiver
(generic JSON and Slack-style) and a real local SMTP server (aiosmtpd), with retries and
backoff while the receiver is down and delivery once it is back."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from console_client import client, make_shield, sign_in
from servers import free_port
from sqlalchemy import insert

from scrapeshield.clock import ManualClock
from scrapeshield.console.alerts.job import BASE_DELAY, MAX_ATTEMPTS
from scrapeshield.console.alerts.store import AlertConfigError, AlertStore
from scrapeshield.context import ContextBuilder
from scrapeshield.db.models import CampaignRow
from scrapeshield.runtime import Shield
from scrapeshield.testing.db import event
from scrapeshield.types import Action, Decision

NOW = 1_800_000_000.0


class Receiver:
    """A webhook receiver on a loopback port: records every POST, answers ``status``."""

    def __init__(self, port: int, status: int = 200) -> None:
        self.received: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.status = status
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                outer.received.append(json.loads(body))
                outer.headers.append({k.lower(): v for k, v in self.headers.items()})
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server: object, session: object, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope.content)
        return "250 OK"


@pytest.fixture
def shield(tmp_path: Path) -> Iterator[Shield]:
    s = make_shield(tmp_path, ManualClock(NOW))
    yield s
    s.close()


def blocks(shield: Shield, count: int, client_id: str = "p:scraper", score: float = 80.0) -> None:
    now = shield.clock.now()
    shield.db.write_events([event(i, ts=now - 30 + i * 0.1, client=client_id, action="block", score=score,
                                  uid=f"{client_id}-{now}-{i}") for i in range(count)])


def test_a_rate_rule_alerts_once_per_window_to_a_webhook_and_slack(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    hook_port, slack_port = free_port(), free_port()
    hook, slack = Receiver(hook_port), Receiver(slack_port)
    try:
        store.add_rule("refusals", "rate", 10, 300, "admin1", NOW)
        store.add_channel("soc", "webhook", f"http://127.0.0.1:{hook_port}/hook", NOW)
        store.add_channel("chat", "slack", f"http://127.0.0.1:{slack_port}/services/T/B/X", NOW)
        blocks(shield, 5)
        shield.alerts()
        assert hook.received == [] and store.recent() == []  # under the threshold
        blocks(shield, 10, "p:other")
        shield.alerts()
        shield.alerts()  # same condition, same window: not again
        assert len(hook.received) == 1 and len(slack.received) == 1
        body = hook.received[0]
        assert body["source"] == "scrapeshield" and body["detail"]["refused"] == 15
        assert "15 refused requests" in body["title"]
        assert hook.headers[0]["x-scrapeshield-alert"] == body["id"]
        assert slack.received[0]["text"].startswith(":rotating_light: *scrapeshield*")
        assert "15 refused requests" in slack.received[0]["text"]
        [alert] = store.recent()
        assert {d["status"] for d in alert["deliveries"]} == {"sent"}
        shield.clock.advance(300)  # the next window: the condition is still there, one more alert
        blocks(shield, 12)
        shield.alerts()
        assert len(hook.received) == 2 and shield.alerts.raised == 2
    finally:
        hook.stop()
        slack.stop()


def test_a_down_receiver_is_retried_with_backoff_until_it_is_back(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    port = free_port()  # nothing listens here yet
    store.add_rule("high score", "score", 70, 600, "admin1", NOW)
    store.add_channel("soc", "webhook", f"http://127.0.0.1:{port}/hook", NOW)
    blocks(shield, 3, "p:bot", score=95)
    shield.alerts()
    [alert] = store.recent()
    [delivery] = alert["deliveries"]
    assert delivery["status"] == "pending" and delivery["attempts"] == 1
    assert "Connect" in delivery["last_error"]
    shield.alerts.deliver()  # not due yet: no new attempt
    assert store.recent()[0]["deliveries"][0]["attempts"] == 1
    receiver = Receiver(port, status=503)  # up, but failing
    try:
        shield.clock.advance(BASE_DELAY)
        shield.alerts.deliver()
        assert len(receiver.received) == 1
        assert store.recent()[0]["deliveries"][0]["last_error"] == "HTTP 503 from the receiver"
        receiver.status = 200  # back
        shield.clock.advance(BASE_DELAY)
        shield.alerts.deliver()
        assert len(receiver.received) == 1  # 2 * BASE_DELAY after the second try: not yet
        shield.clock.advance(BASE_DELAY)
        shield.alerts.deliver()
        assert len(receiver.received) == 2
        assert receiver.received[0]["id"] == receiver.received[1]["id"]  # same id on retry
        [done] = store.recent()[0]["deliveries"]
        assert done["status"] == "sent" and done["attempts"] == 3 and shield.alerts.failures == 2
    finally:
        receiver.stop()


def test_a_delivery_is_given_up_after_the_last_try(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    store.add_rule("high score", "score", 70, 600, "admin1", NOW)
    store.add_channel("gone", "webhook", f"http://127.0.0.1:{free_port()}/", NOW)
    blocks(shield, 1, "p:bot", score=99)
    shield.alerts()
    for _ in range(MAX_ATTEMPTS):
        shield.clock.advance(3600)
        shield.alerts.deliver()
    [delivery] = store.recent()[0]["deliveries"]
    assert delivery["status"] == "failed" and delivery["attempts"] == MAX_ATTEMPTS


def test_e_mail_through_a_real_smtp_server_down_then_up(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    port = free_port()
    store.add_rule("new campaigns", "new_campaign", 50, 3600, "admin1", NOW)
    store.add_channel("oncall", "email", f"smtp://127.0.0.1:{port}/oncall@example.org?from=shield@example.org",
                      NOW)
    with shield.db.engine.begin() as conn:
        conn.execute(insert(CampaignRow).values(
            id="cmp-1", kind="fingerprint", key="fp1", label="fingerprint fp1", first_seen=NOW - 100,
            last_seen=NOW - 5, clients=40, requests=900, records=700, score=85.0, status="active",
            action="", reasons="[]", updated_at=NOW))
    shield.alerts()
    assert store.recent()[0]["deliveries"][0]["status"] == "pending"  # no SMTP server yet
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        shield.clock.advance(BASE_DELAY)
        shield.alerts()  # evaluates again (the campaign is not raised twice) and delivers
        assert len(mailbox.messages) == 1
        mail = message_from_bytes(mailbox.messages[0])
        assert mail["To"] == "oncall@example.org" and mail["From"] == "shield@example.org"
        assert "new campaign fingerprint fp1" in mail["Subject"]
        assert '"campaign": "cmp-1"' in mail.get_payload()
        assert len(store.recent()) == 1
    finally:
        controller.stop()


def test_records_served_rule_reads_the_live_monitor(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    store.add_rule("harvest", "records", 50, 300, "admin1", NOW)
    builder = ContextBuilder(shield.policy)
    allow = Decision(Action.ALLOW, 0.0, (), "score")
    for n in range(60):  # 60 distinct profiles served within this minute
        ctx = builder.build(NOW - (NOW % 60) + 1, "203.0.113.5", "GET", f"/api/v1/users/{n % 60}",
                            [("user-agent", "x")])
        shield.monitor(ctx, allow)
    assert shield.monitor.records_served(NOW - 300) == 60
    assert shield.alerts.evaluate() == 1
    assert "60 distinct personal records" in store.recent()[0]["title"]


def test_alert_settings_are_checked(shield: Shield) -> None:
    store = AlertStore(shield.db.engine)
    with pytest.raises(AlertConfigError, match="smtp://host:port/to@example.org"):
        store.add_channel("x", "email", "oncall@example.org", NOW)
    with pytest.raises(AlertConfigError, match="http:// or https://"):
        store.add_channel("x", "webhook", "file:///etc/passwd", NOW)
    with pytest.raises(AlertConfigError, match="rule kind"):
        store.add_rule("x", "nonsense", 1, 300, "a", NOW)


def test_alerts_are_listed_in_the_console_and_configured_by_admins_only(shield: Shield) -> None:
    blocks(shield, 3, "p:bot", score=95)
    with client(shield) as c:
        assert sign_in(c, "admin1").status_code == 303
        from console_client import csrf_of

        token = csrf_of(c)
        added = c.post("/console/alerts/rules", data={"csrf": token, "name": "hot clients", "kind": "score",
                                                      "threshold": "90", "window": "600"},
                       follow_redirects=False)
        assert added.status_code == 303
        bad = c.post("/console/alerts/channels", data={"csrf": token, "name": "x", "kind": "email",
                                                       "target": "nope"})
        assert bad.status_code == 400 and "smtp://" in bad.text
        shield.alerts()
        page = c.get("/console/alerts").text
        assert "hot clients: client p:bot scored 95" in page
        trail = [e["action"] for e in shield.db.audit_trail(20)]
        assert "alert.rule.add" in trail
