"""The one shape every detector has."""

from __future__ import annotations

from typing import Protocol

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal


class Detector(Protocol):
    """Looks at one request (and the client's memory) and appends what it finds.

    Contract (checked for every registered detector by ``scrapeshield.testing``):
    never mutates ``ctx``; deterministic for the same inputs and clock; every
    signal carries a catalogued name and a human-readable reason; memory per
    client stays bounded.
    """

    name: str

    def inspect(
        self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]
    ) -> None: ...


class DetectorBase:
    """What the built-in detectors derive from. Compiled, the engine calls a method of a
    common base class directly, where a call through the protocol goes through Python's
    generic method call (a few hundred instructions for each detector on every request)."""

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        raise NotImplementedError


class DetectorFactory(Protocol):
    def __call__(self, policy: CompiledPolicy) -> Detector: ...
