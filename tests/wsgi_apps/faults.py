"""Faults injected into a live shield, for the tests that it never raises into its host.

The request path may run compiled (`make compile`): a compiled object takes no new attribute,
so a test cannot replace one of its methods. These replace a whole part instead, through the
attribute the host or the engine reads it from, and fail where the method would have.
"""

from __future__ import annotations

from typing import Any


class FailingContexts:
    """The engine as it is, except that it cannot build a request's context (a shield bug)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    @property
    def contexts(self) -> Any:
        raise RuntimeError("injected shield failure")


class FailingDecisions:
    """The engine as it is, except that deciding raises (only the host's own guard is left)."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def decide(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")

    async def adecide(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")


class FailingStore:
    """The state store as it is, except that counting a request fails (a shield bug)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def update(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")

    async def aupdate(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")
