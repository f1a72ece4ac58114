"""Route matching column-wise (polars, Rust regex) gives what ``CompiledPolicy.route_for`` gives.

The batch path matches every distinct path of a log in polars; the engine matches one path
at a time with Python's ``re``. Both are held to the same route, record, number and honeypot
on paths chosen to find where the two regex engines or the two string models could part:
line ends, Unicode letters and digits, regex metacharacters, empty segments, paths longer
than the engine keeps, and routes whose literal parts need escaping.
"""

from __future__ import annotations

import dataclasses
import re

import polars as pl
import pytest

from scrapeshield.context import MAX_PATH
from scrapeshield.forensics import routes
from scrapeshield.forensics.lookup import _python_routes, encode, path_table
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import default_policy_text, load_policy, parse_policy

AWKWARD = [
    "/",
    "//",
    "//u/alice",
    "/u",
    "/u/",
    "/u/alice",
    "/u/alice/",
    "/u/alice/followers",
    "/u/alice/followers/",
    "/u/al ice",
    "/u/al%20ice",
    "/u/élodie",
    "/u/日本語",
    "/u/²",
    "/u/٣٤",
    "/u/123",
    "/u/alice\n",
    "/u/ali\nce",
    "/u/mira.okafor.archive",
    "/u/mira.okafor.archive/",
    "/api/v1/users/0",
    "/api/v1/users/00",
    "/api/v1/users/42",
    "/api/v1/users/42\n",
    "/api/v1/users/42/",
    "/api/v1/users/42/followers",
    "/api/v1/users/123456789012345678",
    "/api/v1/users/1234567890123456789",
    "/api/v1/users/٣",
    "/api/v1/users/-1",
    "/api/v1/users/4 2",
    "/api/v1/search",
    "/api/v1/search/",
    "/api/v1/searchx",
    "/robots.txt",
    "/robots.txt\n",
    "/robotsxtxt",
    "/static/app.css",
    "/static/",
    "/static/a\nb",
    "/static/a/b/c.js",
    "/static",
    "/login",
    "/login\n",
    "/logout",
    "/healthz",
    "/search",
    "/nope",
    "/u/(a)[b]{c}*+?|^$.\\",
    "/" + "u/" + "x" * (MAX_PATH + 10),
    "/u/" + "y" * 200,
]

# Routes whose literal parts carry characters that regex syntax escapes.
ESCAPED = """
  - {name: dotted, path: '/a.b-c~d/{x}', record: x}
  - {name: spaced, path: '/with space/{n:int}', record: n, record_kind: n}
  - {name: files, path: '/files/{rest:path}'}
  - {name: hashed, path: '/x#y&z/{s:str}/end'}
  - {name: anywhere, path: '/{any}/tail'}
"""


def escaped_policy() -> CompiledPolicy:
    text = default_policy_text()
    at = text.index("routes:\n") + len("routes:\n")
    return parse_policy(text[:at] + ESCAPED.lstrip("\n") + text[at:])


EXTRA = [
    "/a.b-c~d/1",
    "/aXb-c~d/1",
    "/a.b-c~d/",
    "/with space/12",
    "/with space/x",
    "/files/a/b\n",
    "/files/",
    "/x#y&z/q/end",
    "/x#y&z/q/end\n",
    "/zz/tail",
    "//tail",
    "/zz/tail/",
]

COLUMNS = ["path", "p", "route_index", "route", "record", "trap", "number"]


@pytest.mark.parametrize("policy", [load_policy(), escaped_policy()], ids=["default", "escaped"])
def test_polars_routes_equal_route_for(policy: CompiledPolicy) -> None:
    paths = pl.Series("path", AWKWARD + EXTRA, dtype=pl.String)
    fast = routes.path_table(paths, policy)
    assert fast is not None, "every compiled pattern is in the shared subset"
    exact = _python_routes(paths, policy)
    assert fast.select(COLUMNS).to_dicts() == exact.select(COLUMNS).to_dicts()
    assert fast["route"].n_unique() >= 6  # not a table of misses


def test_python_routes_follow_the_engine() -> None:
    policy = load_policy()
    table = _python_routes(pl.Series(["/u/alice", "/api/v1/users/7", "/nope"]), policy)
    assert table["route"].to_list() == ["profile-page", "profile-api", ""]
    assert table["record"].to_list() == ["username:alice", "user:7", ""]
    assert table["number"].to_list() == [-1, 7, -1]


def test_a_pattern_outside_the_shared_subset_is_matched_in_python() -> None:
    policy = load_policy()
    odd = dataclasses.replace(policy.routes[0], regex=re.compile(r"(?i)/API/v1/users/(?P<id>[0-9]{1,18})\Z"))
    assert routes.rust_pattern(odd) is None
    assert routes.rust_pattern(policy.routes[0]) is not None


def test_encode_gives_each_line_its_distinct_value() -> None:
    values = pl.Series(["b", "a", "b", "c", "a", "a"])
    rows, distinct = encode(values)
    assert distinct.gather(rows).to_list() == values.to_list()
    assert sorted(distinct.to_list()) == ["a", "b", "c"]


def test_path_table_rule_parts_and_ids() -> None:
    policy = load_policy()
    table = path_table(pl.Series("path", ["/u/a", "/u/b", "/u/a/followers", "/static/x.css"]), policy)
    ids = table["record_id"].to_list()
    assert ids[0] != ids[1] and ids[0] >= 0 and ids[2] == ids[3] == -1
    assert table["cost"].to_list() == [1, 1, 2, 0]
    assert table["asset"].to_list() == [False, False, False, True]
    assert table["path_id"].to_list() == [0, 1, 2, 3]
