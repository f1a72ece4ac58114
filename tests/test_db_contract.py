"""Every database runs the same contract (scrapeshield.testing.db): SQLite and a real PostgreSQL."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest
from pg_server import PostgresServer, pg_server  # noqa: F401 - the module-scoped fixture

from scrapeshield.testing.db import CHECKS

BACKENDS = ("sqlite", "postgresql")
_counter = itertools.count()


@pytest.fixture(params=BACKENDS)
def new_url(request: pytest.FixtureRequest, tmp_path: Path) -> Any:
    if request.param == "sqlite":
        return lambda: f"sqlite:///{tmp_path / f'contract-{next(_counter)}.db'}"
    server: PostgresServer = request.getfixturevalue("pg_server")
    return server.create_database


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_database_contract(new_url: Any, check: Any) -> None:
    check(new_url)
