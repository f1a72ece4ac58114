"""Every state backend runs the same contract (scrapeshield.testing.state)."""

from __future__ import annotations

from typing import Any

import pytest

from scrapeshield.state.memory import MemoryStore
from scrapeshield.testing.state import CHECKS

BACKENDS: dict[str, Any] = {"memory": MemoryStore}


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_state_contract(backend: str, check: Any) -> None:
    check(BACKENDS[backend])
