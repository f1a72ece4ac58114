"""Honeypots: paths that no human can see. A client that requests one is remembered.

The memory is per address *and* fingerprint, and fades after an hour: many people
can share one address (carrier NAT, an office proxy), and one scraper among them
must not get them all blocked for a day.
"""

from __future__ import annotations

from typing import Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory, fingerprint_code
from scrapeshield.types import RequestContext, Signal

REMEMBER_FOR: Final = 3600.0  # seconds a trap hit keeps counting against the same client


class HoneypotDetector(DetectorBase):
    name = "honeypot"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._paths = policy.honeypots
        self._weight = policy.weights["honeypot.hit"]

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        if ctx.path in self._paths:
            memory.honeypot_hits += 1
            memory.trapped_at = ctx.ts
            memory.trap_code = fingerprint_code(ctx.fingerprint)
            out.append(Signal("honeypot.hit", self._weight, f"requested the trap {ctx.path}"))
        elif (
            memory.honeypot_hits
            and fingerprint_code(ctx.fingerprint) == memory.trap_code
            and ctx.ts - memory.trapped_at < REMEMBER_FOR
        ):
            out.append(
                Signal(
                    "honeypot.hit",
                    self._weight,
                    f"requested {memory.honeypot_hits} trap(s) no human can see earlier",
                )
            )
