"""Two shield processes sharing one Redis: spreading requests over nodes buys a scraper nothing.

Both nodes run ``scrapeshield demo --state redis://…`` with the same secret (as a real
deployment shares it), each with its own data directory, under the default policy with
a smaller data budget (20 distinct profiles per IP in 10 minutes, so that a run is short)
and a looser burst limit (so that the run's pace does not matter). Each simulated client
has its own loopback source address; every scenario is run against one node, then, after
emptying Redis, round robin over both.
"""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import httpx
import pytest
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture
from servers import Server, chrome_headers, start_cli

from scrapeshield.policy.loader import default_policy_text

pytestmark = pytest.mark.timeout(120)
BROWSER = {k: v for k, v in chrome_headers("").items() if k != "host"}
BUDGET = 20


@pytest.fixture(scope="module")
def nodes(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Server]]:  # noqa: F811
    policy_text = default_policy_text()
    policy_text = policy_text.replace("window: 10, limit: 60,", "window: 10, limit: 1000,")
    policy_text = policy_text.replace("window: 600, limit: 80,", f"window: 600, limit: {BUDGET},")
    policy = tmp_path_factory.mktemp("policy") / "policy.yaml"
    policy.write_text(policy_text)
    secret = secrets.token_bytes(32)
    started: list[Server] = []
    try:
        for name in ("a", "b"):
            data = tmp_path_factory.mktemp(f"node-{name}")
            (data / "secret.key").write_bytes(secret)
            started.append(start_cli(["demo", "--users", "2000", "--seed", "7", "--policy", str(policy),
                                      "--state", redis_server.url], data))
        yield started
    finally:
        for server in started:
            server.stop()


def client(source: str, headers: dict[str, str] | None = None) -> httpx.Client:
    transport = httpx.HTTPTransport(local_address=source)
    return httpx.Client(transport=transport, timeout=15, headers=headers, follow_redirects=False)


def outcome(response: httpx.Response) -> str:
    if response.status_code == 200 and "json" in response.headers.get("content-type", ""):
        body = response.json()
        if isinstance(body, dict) and isinstance(body.get("id"), int) and "username" in body:
            return "profile"
    return response.headers.get("x-scrapeshield-action", str(response.status_code))


def run(targets: list[Server], source: str, ids: list[int], headers: dict[str, str] | None,
        assets: bool = False) -> list[str]:
    """Read ``/api/v1/users/{id}`` for each id, round robin over ``targets``."""
    with client(source, headers) as c:
        if assets:  # a browser fetches a stylesheet once, as people's browsers do
            c.get(f"{targets[-1].url}/static/app.css", headers={"sec-fetch-dest": "style"})
        return [outcome(c.get(f"{targets[i % len(targets)].url}/api/v1/users/{n}"))
                for i, n in enumerate(ids)]


def alone_and_spread(nodes: list[Server], redis: RedisServer, name: int, **kwargs: object) -> tuple[
        list[str], list[str]]:
    redis.client().flushall()
    alone = run(nodes[:1], f"127.0.{name}.1", **kwargs)  # type: ignore[arg-type]
    redis.client().flushall()
    spread = run(nodes, f"127.0.{name}.2", **kwargs)  # type: ignore[arg-type]
    return alone, spread


def test_naive_scraper_alternating_is_contained_as_on_one_node(
    nodes: list[Server], redis_server: RedisServer  # noqa: F811
) -> None:
    alone, spread = alone_and_spread(nodes, redis_server, 10, ids=list(range(1, 101)), headers=None)
    assert spread.count("profile") <= alone.count("profile") <= 5
    assert set(spread) - {"profile"} <= {"challenge", "throttle", "block"}
    refused = [i for i, action in enumerate(spread) if action != "profile"]
    assert {i % 2 for i in refused} == {0, 1}, "both nodes refuse it"


def test_data_budget_is_one_budget_across_nodes(
    nodes: list[Server], redis_server: RedisServer  # noqa: F811
) -> None:
    """A browser reading profiles in no particular order: the distinct-records limit alone
    stops it, at exactly the same profile whether it uses one node or both."""
    ids = [(n * n * 37) % 1999 + 1 for n in range(1, 41)]  # no constant stride (that is enumeration)
    alone, spread = alone_and_spread(nodes, redis_server, 11, ids=ids, headers=BROWSER, assets=True)
    assert alone == ["profile"] * BUDGET + ["challenge"] * (len(ids) - BUDGET)
    assert spread == alone
    keys = {k.decode() for k in redis_server.client().scan_iter("ss:{ip:127.0.11.2}*")}
    # one record set for the 10-minute and daily budgets (they count the same routes): the daily one's
    assert keys == {f"ss:{{ip:127.0.11.2}}:{s}" for s in ("w", "d3", "m")}
    assert redis_server.client().zcard("ss:{ip:127.0.11.2}:d3") == len(ids)  # refused reads count too
    for node in nodes:
        with node.admin() as admin:
            metrics = admin.get("/metrics").text
        assert "scrapeshield_state_backend_up 1.0" in metrics
        assert re.search(r"^scrapeshield_state_fallback_decisions_total 0\.0$", metrics, re.M)


def test_behaviour_remembered_across_nodes(nodes: list[Server], redis_server: RedisServer) -> None:  # noqa: F811
    """A browser impersonator walking ids in order, no assets: caught by what the nodes
    remember about it (sequential reads, pages without assets), written to Redis before
    each response leaves. A read on one connection can overtake a write sent just before
    on another when Redis is starved of CPU, so spreading may gain it one request, no more;
    with memory kept per node it would get about twice as many."""
    alone, spread = alone_and_spread(nodes, redis_server, 12, ids=list(range(1, 31)), headers=BROWSER)
    assert 0 < alone.count("profile") <= 12
    assert spread.count("profile") <= alone.count("profile") + 1, (alone, spread)


def test_person_browsing_across_nodes_untouched(nodes: list[Server]) -> None:
    seen: list[httpx.Response] = []
    with client("127.0.13.1", BROWSER) as person:
        home = person.get(nodes[0].url + "/")
        seen.append(home)
        profiles = [p for p in re.findall(r'href="(/u/[^"]+)"', home.text) if "archive" not in p]
        assets = sorted(set(re.findall(r'(?:href|src)="(/static/[^"]+)"', home.text)))[:6]
        for i, asset in enumerate(assets):
            seen.append(person.get(nodes[i % 2].url + asset,
                                   headers={"sec-fetch-dest": "style", "referer": nodes[0].url + "/"}))
        for i, path in enumerate(profiles[:8]):
            time.sleep(0.1)  # think time
            seen.append(person.get(nodes[i % 2].url + path, headers={"referer": nodes[0].url + "/"}))
    assert all(r.status_code == 200 for r in seen), [(str(r.url), r.status_code) for r in seen]
    assert not any("x-scrapeshield-action" in r.headers for r in seen)
