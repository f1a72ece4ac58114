"""The counter-state protocol: what the engine needs from a backend, nothing more.

One ``update`` call per decision carries every counter the request touches, so
a networked backend (Redis) answers a decision in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

# One counter kept under a key: (window in seconds, counts distinct records?, limit).
CounterSpec = tuple[float, bool, int]
# (state key, the counters kept under it, this request's cost for each counter (0: does
# not count for it), the record touched or "")
KeyUpdate = tuple[str, tuple[CounterSpec, ...], tuple[int, ...], str]


class ClientMemory:
    """Behaviour a detector remembers about one client between its requests."""

    __slots__ = (
        "first_seen",
        "last_seen",
        "requests",
        "pages",
        "assets",
        "last_number",
        "sequential_run",
        "honeypot_hits",
        "trapped_at",
        "trap_fingerprint",
    )

    def __init__(self, now: float) -> None:
        self.first_seen = now
        self.last_seen = now
        self.requests = 0
        self.pages = 0
        self.assets = 0
        self.last_number = -1  # last numeric record id read (-1: none yet)
        self.sequential_run = 0  # consecutive reads at id = previous id ± small step
        self.honeypot_hits = 0
        self.trapped_at = 0.0  # when this address last requested a trap
        self.trap_fingerprint = ""  # the fingerprint of the client that did


class StateStore(Protocol):
    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        """Count this request under every key; return each limit's usage and the client's memory.

        Usages line up with ``updates`` and, inside each, with its limits: requests
        (weighted by cost) or distinct records in the sliding window, this request included.
        """
        ...

    def tracked_clients(self) -> int:
        """How many keys the backend holds now (for metrics and memory reports)."""
        ...
