"""degrade and decoy: the rewriting itself, and end to end through the demo over real HTTP."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml
from servers import Server, start_cli

from scrapeshield.actions.decoy import DecoyMaker, normalise_canary
from scrapeshield.actions.degrade import removed, rewrite_html, rewrite_json, selectors
from scrapeshield.demo.pages import profile_page
from scrapeshield.demo.population import Population
from scrapeshield.policy.loader import default_policy_text, load_policy

POLICY = load_policy()
PROFILE_FIELDS = next(r for r in POLICY.routes if r.name == "profile-page")
USERS = Population.generate(2000, seed=7)


def test_json_fields_removed_at_any_depth() -> None:
    body = json.dumps({"id": 4, "username": "ana", "phone": "+1 2", "email": "a@b.c",
                       "friends": [{"id": 5, "email": "x@y.z", "name": "Bo"}]}).encode()
    out = json.loads(rewrite_json(body, ("phone", "email", "name"), None) or b"")
    assert out == {"id": 4, "username": "ana", "friends": [{"id": 5}]}
    assert rewrite_json(b"<html>", ("phone",), None) is None, "not JSON: the caller refuses"


def test_html_profile_loses_every_personal_field() -> None:
    user = USERS.by_id(12)
    assert user is not None
    page = profile_page(user, ["hello"], 3, None)
    assert user.phone in page and user.email in page
    out = rewrite_html(page, selectors(PROFILE_FIELDS.html_fields), removed)
    for value in (user.phone, user.email, user.name, user.bio, user.city, user.photo):
        assert value not in out, value
    assert f"@{user.username}" in out and "Recent posts" in out, "the rest of the page stays"


def test_decoy_is_stable_per_client_and_record_and_differs_between_clients() -> None:
    maker = DecoyMaker(b"k" * 32)
    one, again = maker.record("p:a", "user:7"), maker.record("p:a", "user:7")
    other, elsewhere = maker.record("p:b", "user:7"), maker.record("p:a", "user:8")
    assert one == again
    assert len({one.email, other.email, elsewhere.email}) == 3
    assert len({one.phone, other.phone, elsewhere.phone}) == 3
    assert one.email.split("@")[1].endswith("example"), "reserved domains only"
    assert normalise_canary(one.phone.replace(" ", "-")) == normalise_canary(one.phone)
    assert normalise_canary(one.email.upper()) == one.email


def test_unknown_field_in_decoy_is_blanked() -> None:
    fake = DecoyMaker(b"k" * 32).record("p:a", "user:1")
    assert fake.value("location", "") == f"{fake.city}, {fake.country}"
    assert fake.value("mobile_number", "") == fake.phone
    assert fake.value("shoe_size", "44") == ""


# -- end to end ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo under the default policy plus two rules that pick the action by user-agent."""
    data = yaml.safe_load(default_policy_text())
    data["rules"] += [
        {"name": "test-decoy", "match": {"ua_regex": "^decoy-me"}, "action": "decoy"},
        {"name": "test-degrade", "match": {"ua_regex": "^degrade-me"}, "action": "degrade"},
    ]
    where = tmp_path_factory.mktemp("decoy")
    path = where / "policy.yaml"
    path.write_text(yaml.safe_dump(data))
    server = start_cli(["demo", "--users", "2000", "--seed", "7", "--policy", str(path)], where)
    yield server
    server.stop()


def _get(server: Server, path: str, agent: str, source: str = "127.0.0.31") -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, timeout=15) as client:
        return client.get(path, headers={"user-agent": agent, "accept-encoding": "gzip"})


def _lookup(server: Server, value: str) -> dict[str, object]:
    deadline = time.monotonic() + 20  # canaries are written by a job every 2 seconds
    while True:
        run = subprocess.run(
            [sys.executable, "-m", "scrapeshield", "canary", "lookup", value, "--json",
             "--data-dir", str(server.data_dir)], capture_output=True, text=True, timeout=60,
        )
        if run.returncode == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert run.returncode == 0, run.stdout + run.stderr
    found: dict[str, object] = json.loads(run.stdout)
    return found


def test_decoy_json_carries_a_traceable_canary(site: Server) -> None:
    real = USERS.by_id(5)
    assert real is not None
    response = _get(site, "/api/v1/users/5", "decoy-me/1.0")
    assert response.status_code == 200
    assert response.headers["x-scrapeshield-action"] == "decoy"
    body = response.json()
    assert body["id"] == 5
    assert body["phone"] != real.phone and body["email"] != real.email and body["name"] != real.name
    again = _get(site, "/api/v1/users/5", "decoy-me/1.0").json()
    assert again["email"] == body["email"], "the same client sees the same fake person"
    other = _get(site, "/api/v1/users/5", "decoy-me/1.0", source="127.0.0.32").json()
    assert other["email"] != body["email"], "another client gets another canary"
    found = _lookup(site, body["email"])
    assert found["found"] is True and found["record"] == "user:5"
    assert found["route"] == "profile-api" and str(found["client"]).startswith("p:")
    assert "127.0.0" not in json.dumps(found), "no raw address in the canary store"
    by_phone = _lookup(site, body["phone"].replace(" ", ""))
    assert by_phone["client"] == found["client"] and by_phone["kind"] == "phone"


def test_decoy_html_profile(site: Server) -> None:
    real = USERS.by_id(9)
    assert real is not None
    response = _get(site, f"/u/{real.username}", "decoy-me/1.0", source="127.0.0.33")
    assert response.status_code == 200 and response.headers["x-scrapeshield-action"] == "decoy"
    for value in (real.phone, real.email, real.name):
        assert value not in response.text
    assert 'class="email"><a href="mailto:' in response.text


def test_degrade_json_and_html(site: Server) -> None:
    real = USERS.by_id(21)
    assert real is not None
    response = _get(site, "/api/v1/users/21", "degrade-me/1.0")
    assert response.headers["x-scrapeshield-action"] == "degrade"
    body = response.json()
    assert body["id"] == 21 and body["username"] == real.username
    assert not {"phone", "email", "name", "bio", "city", "photo"} & set(body)
    page = _get(site, f"/u/{real.username}", "degrade-me/1.0")
    assert page.status_code == 200 and page.headers["x-scrapeshield-action"] == "degrade"
    assert real.phone not in page.text and real.email not in page.text
    assert int(page.headers["content-length"]) == len(page.content)


def test_unknown_canary_is_not_found(site: Server, tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "scrapeshield", "canary", "lookup", "nobody@example.com",
         "--data-dir", str(site.data_dir)], capture_output=True, text=True, timeout=60,
    )
    assert run.returncode == 1 and "not a canary" in run.stderr


def test_canaries_past_their_retention_period_are_deleted(tmp_path: Path) -> None:
    """Who received a planted value is personal data too: kept `events.canary_retention_days`
    (730 by default, longer than events), then deleted by the shield's retention job, which
    runs at start and hourly with the running policy's setting."""
    from scrapeshield.actions.canaries import Planted, lookup
    from scrapeshield.clock import ManualClock, monotonic
    from scrapeshield.runtime import Shield
    from scrapeshield.settings import Settings

    assert load_policy(None).source.events.canary_retention_days == 730
    clock = ManualClock(1_750_000_000.0)
    shield = Shield(Settings.resolve(data_dir=str(tmp_path)), clock)
    [job] = [j for j in shield.jobs.jobs if j.name == "retention"]
    assert job.every == 3600.0 and job.due <= monotonic()  # first at start, then hourly
    log, db = shield.editor.canaries, shield.db

    def plant(value: str, age_days: float) -> None:
        log.add(Planted(value, "email", "p:someone", "p:net", "fp", "", "user:1", "profile-api", "curl/8",
                        clock.now() - age_days * 86400.0))

    try:
        plant("old@example.com", 731)
        plant("new@example.com", 9)
        log.flush()
        assert lookup(db, "old@example.com") is not None and log.purged == 0
        shield.purge_expired()
        assert lookup(db, "old@example.com") is None and lookup(db, "new@example.com") is not None
        assert log.purged == 1
        # A reloaded policy's shorter period applies at the next purge.
        policy = tmp_path / "policy.yaml"
        shorter = default_policy_text().replace("canary_retention_days: 730", "canary_retention_days: 5")
        policy.write_text(shorter)
        assert shield.reload(policy) == []
        assert lookup(db, "new@example.com") is not None
        shield.purge_expired()
        assert lookup(db, "new@example.com") is None and log.purged == 2
    finally:
        shield.close()
