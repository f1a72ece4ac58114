"""The counter-state protocol: what the engine needs from a backend, nothing more.

One ``update`` call per decision carries every counter the request touches, so
a networked backend (Redis) answers a decision in one round trip.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from scrapeshield.state.client import MEMORY_SIZE, ClientMemory

__all__ = ["MEMORY_SIZE", "ClientMemory", "CounterSpec", "KeyUpdate", "StateSender", "StateStore",
           "fingerprint_code", "path_code"]

# One counter kept under a key: (window in seconds, counts distinct records?, limit).
CounterSpec = tuple[float, bool, int]
# (state key, the counters kept under it, this request's cost for each counter (0: does
# not count for it), the record touched or "")
KeyUpdate = tuple[str, tuple[CounterSpec, ...], tuple[int, ...], str]


def fingerprint_code(fingerprint: str) -> float:
    """A fingerprint as a number that a float holds exactly (its first 52 bits)."""
    try:
        return float(int(fingerprint[:13], 16))
    except ValueError:
        return 0.0


def path_code(text: str) -> float:
    """A string as a number a float holds exactly (for remembering "the same path")."""
    return float(int(hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest(), 16))


class StateStore(Protocol):
    does_io: bool  # True for networked backends: asyncio hosts then call ``aupdate``

    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        """Count this request under every key; return each limit's usage and the client's memory.

        Usages line up with ``updates`` and, inside each, with its limits: requests
        (weighted by cost) or distinct records in the sliding window, this request included.
        """
        ...

    async def aupdate(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        """``update`` for asyncio hosts."""
        ...

    def keep(self, client: str, memory: ClientMemory) -> None:
        """Store the client's memory as the detectors left it (a networked backend may send
        it with its next round trip rather than make one of its own)."""
        ...

    def tracked_clients(self) -> int:
        """How many keys the backend holds now (for metrics and memory reports)."""
        ...


class StateSender(Protocol):
    """``update`` in two halves, for a networked store: the engine does the work that needs
    no state between them, while the server runs the call."""

    def send(self, updates: Sequence[KeyUpdate], client: str, now: float) -> object:
        """Send the call ``update`` would make; what ``receive`` needs to read its answer."""
        ...

    def receive(self, call: object) -> tuple[list[tuple[float, ...]], ClientMemory]:
        """What ``update`` would return (every ``send`` is followed by one ``receive``)."""
        ...
