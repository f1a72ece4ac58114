"""A real Flask app behind ScrapeshieldWSGI under a real gunicorn (one sync worker) on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wsgi_apps import harness
from wsgi_apps.harness import Gunicorn, start_gunicorn

TARGET = "flask_app:app"


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gunicorn]:
    server = start_gunicorn(TARGET, tmp_path_factory.mktemp("flask"))
    yield server
    server.stop()


def test_naive_crawler_contained(site: Gunicorn) -> None:
    harness.check_naive_crawler_contained(site.url, "127.0.0.21")


def test_person_untouched(site: Gunicorn) -> None:
    harness.check_person_untouched(site.url, "127.0.0.22")


def test_challenge_round_trip(site: Gunicorn) -> None:
    harness.check_challenge_round_trip(site.url, "127.0.0.23")


def test_verify_refuses_bad_input(site: Gunicorn) -> None:
    harness.check_verify_refuses_bad_input(site.url, "127.0.0.24")


def test_app_errors_stay_the_apps(site: Gunicorn) -> None:
    harness.check_app_errors_stay_the_apps(site.url, "127.0.0.25")


@pytest.mark.parametrize(("broken", "mode"), [("engine", "open"), ("host", "open"), ("host", "closed")])
def test_shield_failure_leaves_the_app_answering(tmp_path: Path, broken: str, mode: str) -> None:
    env = {"SCRAPESHIELD_TEST_BREAK": broken}
    if mode == "closed":
        env["SCRAPESHIELD_POLICY"] = str(harness.policy_file(tmp_path, "fail_mode: closed"))
    server = start_gunicorn(TARGET, tmp_path, env)
    try:
        harness.check_shield_failure(server.url, "127.0.0.26", closed=mode == "closed")
        assert "injected shield failure" in server.log()
    finally:
        server.stop()
