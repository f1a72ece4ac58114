"""Every state backend runs the same contract (scrapeshield.testing.state): memory, real Redis,
real Valkey, and a real three-master Redis Cluster."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis_server import (  # noqa: F401 - the fixtures
    RedisCluster,
    RedisServer,
    redis_cluster,
    redis_server,
    valkey_server,
)

from scrapeshield.state.base import StateStore
from scrapeshield.state.cluster import ClusterStore
from scrapeshield.state.memory import MemoryStore
from scrapeshield.state.redis import RedisStore
from scrapeshield.testing.state import CHECKS

_prefixes = itertools.count()


def _memory(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    yield MemoryStore


def _server(fixture: str) -> Callable[[pytest.FixtureRequest], Iterator[Callable[[], StateStore]]]:
    def backend(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
        server: RedisServer | RedisCluster = request.getfixturevalue(fixture)
        kind = ClusterStore if isinstance(server, RedisCluster) else RedisStore
        made: list[RedisStore | ClusterStore] = []

        def fresh() -> StateStore:  # a store of its own: a key prefix nobody else used
            store = kind(server.url, prefix=f"c{next(_prefixes)}", timeout=5)
            made.append(store)
            return store

        yield fresh
        for store in made:
            store.close()

    return backend


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Iterator[Callable[[], StateStore]]]] = {
    "memory": _memory,
    "redis": _server("redis_server"),
    "valkey": _server("valkey_server"),
    "redis-cluster": _server("redis_cluster"),
}


@pytest.fixture(params=sorted(BACKENDS))
def factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    yield from BACKENDS[request.param](request)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_state_contract(factory: Callable[[], StateStore], check: Any) -> None:
    check(factory)
