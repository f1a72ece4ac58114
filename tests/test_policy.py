"""Policy files: every rejection fixture carries the exact error it expects."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scrapeshield.errors import PolicyError
from scrapeshield.policy.loader import load_policy, parse_policy

HERE = Path(__file__).parent / "policies"
BAD = sorted((HERE / "bad").glob("*.yaml"))
GOOD = sorted((HERE / "good").glob("*.yaml"))


def test_fixtures_exist() -> None:
    assert len(BAD) >= 10 and GOOD


@pytest.mark.parametrize("path", BAD, ids=lambda p: p.stem)
def test_bad_policy_rejected_with_key_and_line(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# error: ")
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    assert any(expected in problem for problem in info.value.problems), info.value.problems
    assert str(path) in str(info.value)


@pytest.mark.parametrize("path", GOOD, ids=lambda p: p.stem)
def test_good_policy_loads(path: Path) -> None:
    assert load_policy(path).source.version == 1


def test_default_policy_loads_and_maps_demo_routes() -> None:
    policy = load_policy()
    route, record = policy.route_for("/api/v1/users/42")
    assert route is not None and route.name == "profile-api" and record == "user:42"
    route, record = policy.route_for("/api/v1/users/42/followers")
    assert route is not None and route.name == "followers-api" and record == ""
    route, record = policy.route_for("/u/maria.garcia")
    assert route is not None and record == "username:maria.garcia"
    route, _ = policy.route_for("/static/app.css")
    assert route is not None and route.asset
    assert policy.route_for("/nowhere") == (None, "")
    assert policy.route_for("/api/v1/users/12x") == (None, "")


def test_static_paths_answer_as_the_patterns_do_in_policy_order() -> None:
    """A parameterless route's path is looked up, not matched, yet an earlier pattern that
    also matches it still wins, as in the policy's order."""
    policy = parse_policy(
        "version: 1\n"
        "routes:\n"
        "  - {name: profile, path: '/u/{username}', record: username, record_kind: username}\n"
        "  - {name: me, path: /u/me}\n"
        "  - {name: search, path: /search}\n"
        "  - {name: home, path: /}\n"
    )
    route, record = policy.route_for("/u/me")
    assert route is not None and route.name == "profile" and record == "username:me"
    route, record = policy.route_for("/search")
    assert route is not None and route.name == "search" and record == ""
    route, _ = policy.route_for("/")
    assert route is not None and route.name == "home"
    assert policy.route_for("/search/x") == (None, "")


def test_every_problem_reported_at_once() -> None:
    text = "trusted_proxies: [nope]\nthresholds: {challenge: 500}\nfoo: 1\n"
    with pytest.raises(PolicyError) as info:
        parse_policy(text)
    assert len(info.value.problems) == 3
    lines = sorted(p.split(":")[0] for p in info.value.problems)
    assert lines == ["line 1", "line 2", "line 3"]


def test_missing_and_oversized_files(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read file"):
        load_policy(tmp_path / "absent.yaml")
    big = tmp_path / "big.yaml"
    big.write_bytes(b"#" * 2_000_000)
    with pytest.raises(PolicyError, match="larger than"):
        load_policy(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(PolicyError, match="UTF-8"):
        load_policy(binary)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_arbitrary_text_is_policy_or_policy_error(text: str) -> None:
    try:
        parse_policy(text)
    except PolicyError as exc:
        assert exc.problems and all(isinstance(p, str) for p in exc.problems)


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["limits", "rules", "routes", "thresholds", "weights", "honeypots", "x"]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.text(max_size=20),
            lambda inner: (
                st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
            ),
            max_leaves=10,
        ),
        max_size=4,
    )
)
def test_structured_garbage_never_crashes(data: dict[str, object]) -> None:
    import yaml

    try:
        parse_policy(yaml.safe_dump(data))
    except PolicyError as exc:
        assert all(p.startswith("line ") for p in exc.problems), exc.problems
