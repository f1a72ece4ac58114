"""Every state backend runs the same contract (scrapeshield.testing.state): memory and real Redis."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from redis_server import RedisServer, redis_server  # noqa: F401 - the fixture

from scrapeshield.state.base import StateStore
from scrapeshield.state.memory import MemoryStore
from scrapeshield.state.redis import RedisStore
from scrapeshield.testing.state import CHECKS

_prefixes = itertools.count()


def _memory(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    yield MemoryStore


def _redis(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    server: RedisServer = request.getfixturevalue("redis_server")
    made: list[RedisStore] = []

    def fresh() -> StateStore:  # a store of its own: a key prefix nobody else used
        store = RedisStore(server.url, prefix=f"c{next(_prefixes)}", timeout=5)
        made.append(store)
        return store

    yield fresh
    for store in made:
        store.close()


BACKENDS: dict[str, Callable[[pytest.FixtureRequest], Iterator[Callable[[], StateStore]]]] = {
    "memory": _memory,
    "redis": _redis,
}


@pytest.fixture(params=sorted(BACKENDS))
def factory(request: pytest.FixtureRequest) -> Iterator[Callable[[], StateStore]]:
    yield from BACKENDS[request.param](request)


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_state_contract(factory: Callable[[], StateStore], check: Any) -> None:
    check(factory)
