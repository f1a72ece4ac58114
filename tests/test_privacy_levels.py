"""User privacy levels (C10): the rules in-process, the store, and the admin API on the demo."""

from __future__ import annotations

from pathlib import Path

import httpx
import yaml
from servers import ADMIN_TOKEN, Server, chrome_headers

from scrapeshield.clock import ManualClock
from scrapeshield.db.store import Database
from scrapeshield.demo.population import Population
from scrapeshield.engine import Engine
from scrapeshield.policy.loader import default_policy_text, load_policy, parse_policy
from scrapeshield.privacy.levels import PrivacyLevels
from scrapeshield.state.memory import MemoryStore
from scrapeshield.types import Action, Decision

USERS = Population.generate(2000, seed=7)
BROWSER = [(k, v) for k, v in chrome_headers("social.example").items()]
FROM_SITE = [*BROWSER, ("referer", "https://social.example/")]


def _engine(levels: PrivacyLevels, policy_text: str | None = None) -> tuple[Engine, ManualClock]:
    clock = ManualClock(1_000_000.0)
    policy = parse_policy(policy_text) if policy_text else load_policy()
    return Engine(policy, MemoryStore(), clock, privacy=levels), clock


def _read(engine: Engine, clock: ManualClock, path: str, account: str = "", ip: str = "198.51.100.7",
          ) -> Decision:
    clock.advance(7.3)
    headers = [*FROM_SITE, ("cookie", f"sid={account}.tok")] if account else FROM_SITE
    engine.decide(engine.contexts.build(clock.now(), ip, "GET", "/static/app.css", headers))
    return engine.decide(engine.contexts.build(clock.now(), ip, "GET", path, headers))


def test_signed_in_only_walls_signed_out_readers() -> None:
    levels = PrivacyLevels()
    levels.set(["user:3", "username:ana"], "signed-in", "test", 0.0)
    engine, clock = _engine(levels)
    walled = _read(engine, clock, "/api/v1/users/3")
    assert walled.action is Action.BLOCK and walled.rule == "privacy:signed-in"
    assert _read(engine, clock, "/u/ana").rule == "privacy:signed-in"
    assert _read(engine, clock, "/api/v1/users/3", account="77").action is Action.ALLOW
    assert _read(engine, clock, "/api/v1/users/4").action is Action.ALLOW, "public by default"


def test_a_level_set_after_the_engine_started_applies_at_once() -> None:
    """With no level in the policy and none stored, the engine skips the level lookup; the
    first level the platform sets (the same table, changed in place) applies to the next read."""
    levels = PrivacyLevels()
    engine, clock = _engine(levels)
    assert _read(engine, clock, "/api/v1/users/5").action is Action.ALLOW
    levels.set(["user:5"], "signed-in", "test", 0.0)
    assert _read(engine, clock, "/api/v1/users/5").rule == "privacy:signed-in"
    levels.set(["user:5"], "public", "test", 0.0)
    assert _read(engine, clock, "/api/v1/users/5").action is Action.ALLOW


def test_protected_is_degraded_for_the_signed_out_and_budgeted_for_everyone() -> None:
    levels = PrivacyLevels()
    levels.set([f"user:{i}" for i in range(1, 40)], "protected", "test", 0.0)
    engine, clock = _engine(levels)
    assert _read(engine, clock, "/api/v1/users/1").action is Action.DEGRADE
    actions = [_read(engine, clock, f"/api/v1/users/{i * 17 % 39 + 1}", account="77",
                     ip="198.51.100.8").action for i in range(25)]
    assert actions[:20] == [Action.ALLOW] * 20, "a signed-in person reads protected profiles"
    assert actions[20:] == [Action.BLOCK] * 5, "but only 20 of them an hour"


def test_policy_default_level_and_route_floor() -> None:
    data = yaml.safe_load(default_policy_text())
    data["detection"]["privacy"] = {"default": "public", "route_levels": {"profile-api": "signed-in"}}
    engine, clock = _engine(PrivacyLevels(), yaml.safe_dump(data))
    assert _read(engine, clock, "/api/v1/users/9").rule == "privacy:signed-in"
    assert _read(engine, clock, "/u/someone").action is Action.ALLOW, "the page route has no floor"
    data["detection"]["privacy"] = {"default": "protected"}
    engine, clock = _engine(PrivacyLevels(), yaml.safe_dump(data))
    assert _read(engine, clock, "/u/someone").action is Action.DEGRADE


def test_levels_are_stored_and_other_nodes_pick_them_up(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'db.sqlite'}")
    one, two = PrivacyLevels(db), PrivacyLevels(db)
    one.set(["user:5"], "protected", "admin", 100.0)
    assert two.get("user:5") == "public"
    assert two.reload() == 1 and two.get("user:5") == "protected"
    one.set(["user:5"], "public", "admin", 101.0)
    two.reload()
    assert two.get("user:5") == "public" and len(two) == 0
    assert PrivacyLevels(db).get("user:5") == "public"
    db.close()


# -- through the demo and its admin API ------------------------------------------------------


def _get(server: Server, path: str, source: str) -> httpx.Response:
    transport = httpx.HTTPTransport(local_address=source)
    with httpx.Client(base_url=server.url, transport=transport, timeout=15) as client:
        host = server.url.removeprefix("http://")
        return client.get(path, headers={**chrome_headers(host), "referer": f"{server.url}/"})


def test_admin_api_sets_levels_that_the_shield_enforces(demo: Server) -> None:
    three, four = USERS.by_id(3), USERS.by_id(4)
    assert three is not None and four is not None
    with httpx.Client(base_url=demo.admin_url, timeout=10) as anonymous:
        assert anonymous.put("/api/privacy", json={"user_id": 3, "level": "protected"}).status_code == 401
    with demo.admin() as admin:
        ok = admin.put("/api/privacy", json={"user_id": 3, "username": three.username, "level": "signed-in"})
        assert ok.status_code == 200, ok.text
        assert admin.put("/api/privacy", json={"user_id": 4, "username": four.username,
                                               "level": "protected"}).status_code == 200
        assert admin.put("/api/privacy", json={"user_id": 4, "level": "secret"}).status_code == 400
        assert admin.put("/api/privacy", json={"level": "public"}).status_code == 400
        assert admin.get("/api/privacy", params={"record": "user:3"}).json()["level"] == "signed-in"
        trail = admin.get("/api/audit").json()["entries"]
    assert any(e["action"] == "privacy.set" and "user:3" in str(e["detail"]) for e in trail)
    walled = _get(demo, "/api/v1/users/3", "127.0.0.61")
    assert walled.status_code == 401 and "sign in" in walled.text.lower()
    assert _get(demo, f"/u/{three.username}", "127.0.0.61").status_code == 401
    degraded = _get(demo, f"/u/{four.username}", "127.0.0.62")
    assert degraded.status_code == 200 and degraded.headers["x-scrapeshield-action"] == "degrade"
    assert four.phone not in degraded.text and four.email not in degraded.text
    api = _get(demo, "/api/v1/users/4", "127.0.0.62")
    assert api.headers["x-scrapeshield-action"] == "degrade" and "phone" not in api.json()
    public = _get(demo, "/api/v1/users/5", "127.0.0.63")
    assert public.status_code == 200 and "x-scrapeshield-action" not in public.headers
    assert ADMIN_TOKEN  # the admin client above authenticates with it
