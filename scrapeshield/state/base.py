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


def fingerprint_code(fingerprint: str) -> float:
    """A fingerprint as a number that a float holds exactly (its first 52 bits)."""
    try:
        return float(int(fingerprint[:13], 16))
    except ValueError:
        return 0.0


class ClientMemory:
    """Behaviour a detector remembers about one client between its requests.

    A thin view over a list of floats. Between requests the store keeps them as a
    tuple of floats, which the cyclic garbage collector stops tracking: a million
    remembered clients then cost no collection time (and the host application no
    latency). Detectors change the view; ``StateStore.keep`` stores it back.
    """

    __slots__ = ("values",)

    def __init__(self, now: float = 0.0, values: list[float] | None = None) -> None:
        self.values: list[float] = (
            values if values is not None else [now, now, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0]
        )

    @property
    def first_seen(self) -> float:
        return self.values[0]

    @property
    def last_seen(self) -> float:
        return self.values[1]

    @last_seen.setter
    def last_seen(self, value: float) -> None:
        self.values[1] = value

    @property
    def requests(self) -> int:
        return int(self.values[2])

    @requests.setter
    def requests(self, value: int) -> None:
        self.values[2] = value

    @property
    def pages(self) -> int:
        return int(self.values[3])

    @pages.setter
    def pages(self, value: int) -> None:
        self.values[3] = value

    @property
    def assets(self) -> int:
        return int(self.values[4])

    @assets.setter
    def assets(self, value: int) -> None:
        self.values[4] = value

    @property
    def last_number(self) -> int:
        """The last numeric record id read (-1: none yet)."""
        return int(self.values[5])

    @last_number.setter
    def last_number(self, value: int) -> None:
        self.values[5] = value

    @property
    def sequential_run(self) -> int:
        """Consecutive reads at a small step from the previous id."""
        return int(self.values[6])

    @sequential_run.setter
    def sequential_run(self, value: int) -> None:
        self.values[6] = value

    @property
    def honeypot_hits(self) -> int:
        return int(self.values[7])

    @honeypot_hits.setter
    def honeypot_hits(self, value: int) -> None:
        self.values[7] = value

    @property
    def trapped_at(self) -> float:
        """When this address last requested a trap."""
        return self.values[8]

    @trapped_at.setter
    def trapped_at(self, value: float) -> None:
        self.values[8] = value

    @property
    def trap_code(self) -> float:
        """``fingerprint_code`` of the client that requested the trap."""
        return self.values[9]

    @trap_code.setter
    def trap_code(self, value: float) -> None:
        self.values[9] = value


class StateStore(Protocol):
    def update(
        self, updates: Sequence[KeyUpdate], client: str, now: float
    ) -> tuple[list[tuple[float, ...]], ClientMemory]:
        """Count this request under every key; return each limit's usage and the client's memory.

        Usages line up with ``updates`` and, inside each, with its limits: requests
        (weighted by cost) or distinct records in the sliding window, this request included.
        """
        ...

    def keep(self, client: str, memory: ClientMemory) -> None:
        """Store the client's memory as the detectors left it."""
        ...

    def tracked_clients(self) -> int:
        """How many keys the backend holds now (for metrics and memory reports)."""
        ...
