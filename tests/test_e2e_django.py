"""A real Django project with ScrapeshieldMiddleware under a real gunicorn (one sync worker) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wsgi_apps import harness
from wsgi_apps.harness import Gunicorn, start_gunicorn

TARGET = "django_site.wsgi:application"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    server = start_gunicorn(TARGET, tmp_path_factory.mktemp("django"))
    yield server
    server.stop()


def test_naive_crawler_contained(site: Gunicorn) -> None:
    harness.check_naive_crawler_contained(site.url, "127.0.0.31")


def test_person_untouched(site: Gunicorn) -> None:
    harness.check_person_untouched(site.url, "127.0.0.32")


def test_challenge_round_trip(site: Gunicorn) -> None:
    harness.check_challenge_round_trip(site.url, "127.0.0.33")


def test_verify_refuses_bad_input(site: Gunicorn) -> None:
    harness.check_verify_refuses_bad_input(site.url, "127.0.0.34")


def test_app_errors_stay_the_apps(site: Gunicorn) -> None:
    harness.check_app_errors_stay_the_apps(site.url, "127.0.0.35")


@pytest.mark.parametrize(("broken", "mode"), [("engine", "open"), ("host", "open"), ("host", "closed")])
def test_shield_failure_leaves_the_app_answering(tmp_path: Path, broken: str, mode: str) -> None:
    env = {"SCRAPESHIELD_TEST_BREAK": broken}
    if mode == "closed":
        env["SCRAPESHIELD_POLICY"] = str(harness.policy_file(tmp_path, "fail_mode: closed"))
    server = start_gunicorn(TARGET, tmp_path, env)
    try:
        harness.check_shield_failure(server.url, "127.0.0.36", closed=mode == "closed")
        assert "injected shield failure" in server.log()
    finally:
        server.stop()


def test_bad_policy_stops_the_server_from_starting(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("limits:\n  - {name: x, key: ip, window: 10, limit: 5, bogus: 1}\n")
    with pytest.raises(RuntimeError, match="exited early") as failed:
        start_gunicorn(TARGET, tmp_path, {"SCRAPESHIELD_POLICY": str(policy)})
    assert "bogus" in str(failed.value) and "line 2" in str(failed.value)
