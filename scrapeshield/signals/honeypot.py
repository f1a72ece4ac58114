"""Honeypots: paths that no human can see. A client that requests one is remembered."""

from __future__ import annotations

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal


class HoneypotDetector:
    name = "honeypot"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._paths = policy.honeypots
        self._weight = policy.weights["honeypot.hit"]

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        if ctx.path in self._paths:
            memory.honeypot_hits += 1
            out.append(Signal("honeypot.hit", self._weight, f"requested the trap {ctx.path}"))
        elif memory.honeypot_hits:
            out.append(
                Signal(
                    "honeypot.hit",
                    self._weight,
                    f"requested {memory.honeypot_hits} trap(s) no human can see earlier",
                )
            )
