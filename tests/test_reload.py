"""Policy reload on a running `scrapeshield demo --policy FILE`: admin API and SIGHUP.

A bad file is rejected with every problem named by key and line, and the running policy stays
in force; a good file takes effect; every reload lands in the audit trail.
"""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from servers import Server, start_cli

CURL = {"user-agent": "curl/8.5.0", "accept": "*/*"}
BLOCK_CURL = {"name": "block-curl", "match": {"ua_regex": "^curl/"}, "action": "block"}


@pytest.fixture(scope="module")
def baseline() -> dict[str, Any]:
    """The embedded default policy, as `scrapeshield policy default` prints it."""
    text = subprocess.run([sys.executable, "-m", "scrapeshield", "policy", "default"],
                          check=True, capture_output=True, text=True).stdout
    data: dict[str, Any] = yaml.safe_load(text)
    return data


@pytest.fixture(scope="module")
def policy_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("reload-policy") / "policy.yaml"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, policy_path: Path,
           baseline: dict[str, Any]) -> Iterator[Server]:
    policy_path.write_text(yaml.safe_dump(baseline, sort_keys=False))
    data = tmp_path_factory.mktemp("reload")
    server = start_cli(["demo", "--users", "500", "--seed", "5", "--policy", str(policy_path)], data)
    yield server
    server.stop()


@pytest.fixture
def admin(server: Server) -> Iterator[httpx.Client]:
    with server.admin() as client:
        yield client


@pytest.fixture
def running_baseline(server: Server, admin: httpx.Client, policy_path: Path,
                     baseline: dict[str, Any]) -> dict[str, Any]:
    """Each test starts from the baseline policy, loaded and in force."""
    policy_path.write_text(yaml.safe_dump(baseline, sort_keys=False))
    assert admin.post("/api/policy/reload").json() == {"ok": True}
    running: dict[str, Any] = admin.get("/api/policy").json()
    assert not any(r["name"] == "block-curl" for r in running["rules"])
    return running


def changed(baseline: dict[str, Any]) -> dict[str, Any]:
    """A valid policy that differs: a curl-blocking rule first, a lower challenge threshold."""
    policy = json.loads(json.dumps(baseline))
    policy["rules"] = [BLOCK_CURL, *policy.get("rules", [])]
    policy["thresholds"]["challenge"] = baseline["thresholds"]["challenge"] - 5
    return policy


def broken(baseline: dict[str, Any]) -> tuple[str, list[str]]:
    """A policy text with two faults, and the problem each must be reported as."""
    policy = json.loads(json.dumps(baseline))
    policy["thresholds"]["block"] = "ninety"
    policy["bogus_key"] = 1
    text = yaml.safe_dump(policy, sort_keys=False)
    lines = text.splitlines()
    block_line = next(i for i, line in enumerate(lines, 1) if line.strip() == "block: ninety")
    bogus_line = next(i for i, line in enumerate(lines, 1) if line.startswith("bogus_key:"))
    return text, [f"line {block_line}: thresholds.block: Input should be a valid number",
                  f"line {bogus_line}: bogus_key: unknown key"]


def curl_action(server: Server, source: str) -> str | None:
    """The action a curl client (fresh loopback address) meets on a profile."""
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, headers=CURL, timeout=10) as curl:
        response = curl.get("/api/v1/users/3")
    return response.headers.get("x-scrapeshield-action")


def metric(admin: httpx.Client, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", admin.get("/metrics").text, re.M)
    assert found, name
    return float(found.group(1))


def eventually(check: Callable[[], bool], seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def audit_rows(server: Server) -> list[tuple[str, str, dict[str, Any]]]:
    db = server.data_dir / "scrapeshield.db"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        rows = conn.execute("SELECT actor, action, detail FROM audit ORDER BY id").fetchall()
    return [(actor, action, json.loads(detail)) for actor, action, detail in rows]


FAILURES = "scrapeshield_policy_reload_failures_total"


def test_bad_reload_via_admin_is_rejected_and_old_policy_kept(
    server: Server, admin: httpx.Client, policy_path: Path, baseline: dict[str, Any],
    running_baseline: dict[str, Any],
) -> None:
    assert curl_action(server, "127.0.0.101") == "challenge"
    failures = metric(admin, FAILURES)
    text, expected = broken(baseline)
    policy_path.write_text(text)
    response = admin.post("/api/policy/reload")
    assert response.status_code == 422
    body = response.json()
    assert body["ok"] is False
    for problem in expected:
        assert any(problem in p for p in body["problems"]), (problem, body["problems"])
    assert admin.get("/api/policy").json() == running_baseline
    assert metric(admin, FAILURES) == failures + 1
    assert curl_action(server, "127.0.0.102") == "challenge"  # behaviour unchanged
    # An unreadable file is a rejected reload too, not an error.
    policy_path.unlink()
    missing = admin.post("/api/policy/reload")
    assert missing.status_code == 422 and "cannot read file" in missing.json()["problems"][0]
    assert admin.get("/api/policy").json() == running_baseline
    assert metric(admin, FAILURES) == failures + 2


def test_bad_sighup_keeps_process_and_old_policy(
    server: Server, admin: httpx.Client, policy_path: Path, baseline: dict[str, Any],
    running_baseline: dict[str, Any],
) -> None:
    failures = metric(admin, FAILURES)
    text, expected = broken(baseline)
    policy_path.write_text(text)
    server.process.send_signal(signal.SIGHUP)
    eventually(lambda: metric(admin, FAILURES) == failures + 1)
    assert server.process.poll() is None
    assert admin.get("/healthz").text == "ok"
    assert admin.get("/api/policy").json() == running_baseline
    assert curl_action(server, "127.0.0.103") == "challenge"
    # The rejection is logged with the problems, key and line.
    eventually(lambda: all(problem in server.log() for problem in expected))
    assert "SIGHUP reload rejected" in server.log()
    # A second bad SIGHUP counts again; the process still stands.
    server.process.send_signal(signal.SIGHUP)
    eventually(lambda: metric(admin, FAILURES) == failures + 2)
    assert server.process.poll() is None


def test_good_sighup_changes_policy_and_behaviour(
    server: Server, admin: httpx.Client, policy_path: Path, baseline: dict[str, Any],
    running_baseline: dict[str, Any],
) -> None:
    assert curl_action(server, "127.0.0.104") == "challenge"
    failures = metric(admin, FAILURES)
    new = changed(baseline)
    policy_path.write_text(yaml.safe_dump(new, sort_keys=False))
    server.process.send_signal(signal.SIGHUP)

    def reloaded() -> bool:
        return bool(admin.get("/api/policy").json()["rules"][0]["name"] == "block-curl")

    eventually(reloaded)
    running = admin.get("/api/policy").json()
    assert running["thresholds"]["challenge"] == baseline["thresholds"]["challenge"] - 5
    assert running["rules"][0]["action"] == "block"
    assert metric(admin, FAILURES) == failures
    assert curl_action(server, "127.0.0.105") == "block"
    decisions = admin.get("/api/decisions", params={"action": "block", "limit": 20}).json()["decisions"]
    assert any(d["rule"] == "rule:block-curl" and d["user_agent"] == CURL["user-agent"] for d in decisions)
    # Back to the baseline via the admin API: curl is challenged again, not blocked.
    policy_path.write_text(yaml.safe_dump(baseline, sort_keys=False))
    assert admin.post("/api/policy/reload").json() == {"ok": True}
    assert admin.get("/api/policy").json() == running_baseline
    assert curl_action(server, "127.0.0.106") == "challenge"


def test_reloads_are_in_the_audit_trail(
    server: Server, admin: httpx.Client, policy_path: Path, baseline: dict[str, Any],
    running_baseline: dict[str, Any],
) -> None:
    before = len(audit_rows(server))
    policy_path.write_text(broken(baseline)[0])
    assert admin.post("/api/policy/reload").status_code == 422
    server.process.send_signal(signal.SIGHUP)
    eventually(lambda: len(audit_rows(server)) >= before + 2)
    policy_path.write_text(yaml.safe_dump(changed(baseline), sort_keys=False))
    server.process.send_signal(signal.SIGHUP)
    eventually(lambda: len(audit_rows(server)) >= before + 3)
    assert admin.post("/api/policy/reload").status_code == 200
    rows = audit_rows(server)[before:]
    assert rows == [
        ("admin-token", "policy.reload", {"ok": False}),
        ("sighup", "policy.reload", {"ok": False}),
        ("sighup", "policy.reload", {"ok": True}),
        ("admin-token", "policy.reload", {"ok": True}),
    ]
