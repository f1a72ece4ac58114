"""Faults injected into a live shield, for the tests that it never raises into its host.

The request path may run compiled (`make compile`): a compiled object takes no new attribute,
so a test cannot replace one of its methods. These replace a whole part instead, through the
attribute the host or the engine reads it from, and fail where the method would have.
"""

from __future__ import annotations

from typing import Any


class _Wrapped:
    """A part as it is (every attribute read passes through), for a subclass to break one."""

    def __init__(self, part: Any) -> None:
        self._part = part

    def __getattr__(self, name: str) -> Any:
        return getattr(self._part, name)


class FailingContexts(_Wrapped):
    """The engine as it is, except that it cannot build a request's context (a shield bug)."""

    @property
    def contexts(self) -> Any:
        raise RuntimeError("injected shield failure")


class FailingDecisions(_Wrapped):
    """The engine as it is, except that deciding raises (only the host's own guard is left)."""

    def decide(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")

    async def adecide(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")


class FailingObserve(_Wrapped):
    """The engine as it is, except that taking the app's answer status raises (a shield bug)."""

    def observe(self, *args: object) -> None:
        raise RuntimeError("injected shield failure")


class FailingStore(_Wrapped):
    """The state store as it is, except that counting a request fails (a shield bug)."""

    def update(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")

    async def aupdate(self, *args: object) -> Any:
        raise RuntimeError("injected shield failure")
