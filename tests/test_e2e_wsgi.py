"""Real WSGI apps behind the shield under a real gunicorn (one sync worker) on loopback:
a Flask app with ScrapeshieldWSGI and a Django project with ScrapeshieldMiddleware run the
same scenarios (tests/wsgi_apps/harness.py). Each client has its own loopback address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from wsgi_apps import harness
from wsgi_apps.harness import Gunicorn, start_gunicorn

# framework → (gunicorn target, the third octet of its clients' loopback addresses)
SITES = {"flask": ("flask_app:app", 0), "django": ("django_site.wsgi:application", 1)}
DJANGO = SITES["django"][0]


def address(framework: str, n: int) -> str:
    """Flask's clients are 127.0.0.21…, Django's 127.0.0.31… (as when they were two files)."""
    return f"127.0.0.{(2 + SITES[framework][1]) * 10 + n}"


@pytest.fixture(scope="module", params=sorted(SITES))
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, Gunicorn]]:
    framework: str = request.param
    server = start_gunicorn(SITES[framework][0], tmp_path_factory.mktemp(framework))
    yield framework, server
    server.stop()


def test_naive_crawler_contained(site: tuple[str, Gunicorn]) -> None:
    framework, server = site
    harness.check_naive_crawler_contained(server.url, address(framework, 1))


def test_person_untouched(site: tuple[str, Gunicorn]) -> None:
    framework, server = site
    harness.check_person_untouched(server.url, address(framework, 2))


def test_challenge_round_trip(site: tuple[str, Gunicorn]) -> None:
    framework, server = site
    harness.check_challenge_round_trip(server.url, address(framework, 3))


def test_verify_refuses_bad_input(site: tuple[str, Gunicorn]) -> None:
    framework, server = site
    harness.check_verify_refuses_bad_input(server.url, address(framework, 4))


def test_app_errors_stay_the_apps(site: tuple[str, Gunicorn]) -> None:
    framework, server = site
    harness.check_app_errors_stay_the_apps(server.url, address(framework, 5))


@pytest.mark.parametrize("framework", sorted(SITES))
@pytest.mark.parametrize(("broken", "mode"), [("engine", "open"), ("host", "open"), ("host", "closed")])
def test_shield_failure_leaves_the_app_answering(
    tmp_path: Path, framework: str, broken: str, mode: str
) -> None:
    env = {"SCRAPESHIELD_TEST_BREAK": broken}
    if mode == "closed":
        env["SCRAPESHIELD_POLICY"] = str(harness.policy_file(tmp_path, "fail_mode: closed"))
    server = start_gunicorn(SITES[framework][0], tmp_path, env)
    try:
        harness.check_shield_failure(server.url, address(framework, 6), closed=mode == "closed")
        assert "injected shield failure" in server.log()
    finally:
        server.stop()


def test_bad_django_policy_stops_the_server_from_starting(tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("limits:\n  - {name: x, key: ip, window: 10, limit: 5, bogus: 1}\n")
    with pytest.raises(RuntimeError, match="exited early") as failed:
        start_gunicorn(DJANGO, tmp_path, {"SCRAPESHIELD_POLICY": str(policy)})
    assert "bogus" in str(failed.value) and "line 2" in str(failed.value)


@pytest.mark.parametrize("framework", sorted(SITES))
def test_not_found_answers_are_reported_to_the_engine(tmp_path: Path, framework: str) -> None:
    policy = harness.not_found_policy(tmp_path)
    server = start_gunicorn(SITES[framework][0], tmp_path, {"SCRAPESHIELD_POLICY": str(policy)})
    try:
        harness.check_not_found_share_reported(server.url, address(framework, 7), address(framework, 8))
    finally:
        server.stop()
