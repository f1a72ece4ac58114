"""The counter-state protocol: what the engine needs from a backend, nothing more.

One ``update`` call per decision carries every counter the request touches, so
a networked backend (Redis) answers a decision in one round trip.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Generic, Protocol, TypeVar, overload

N = TypeVar("N", int, float)

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


class _Number(Generic[N]):
    """A named slot of ``ClientMemory.values``, read as int or float."""

    __slots__ = ("index", "kind")

    def __init__(self, index: int, kind: Callable[[float], N]) -> None:
        self.index = index
        self.kind: Callable[[float], N] = kind

    @overload
    def __get__(self, memory: None, owner: type) -> _Number[N]: ...
    @overload
    def __get__(self, memory: ClientMemory, owner: type) -> N: ...
    def __get__(self, memory: ClientMemory | None, owner: type) -> N | _Number[N]:
        return self if memory is None else self.kind(memory.values[self.index])

    def __set__(self, memory: ClientMemory, value: N) -> None:
        memory.values[self.index] = value


class ClientMemory:
    """Behaviour a detector remembers about one client between its requests.

    A thin view over a list of floats. Between requests the store keeps them as a
    tuple of floats, which the cyclic garbage collector stops tracking: a million
    remembered clients then cost no collection time (and the host application no
    latency). Detectors change the view; ``StateStore.keep`` stores it back.
    """

    __slots__ = ("values",)

    first_seen = _Number(0, float)
    last_seen = _Number(1, float)
    requests = _Number(2, int)
    pages = _Number(3, int)
    assets = _Number(4, int)
    last_number = _Number(5, int)  # the last numeric record id read (-1: none yet)
    sequential_run = _Number(6, int)  # consecutive reads at a small step from the last id
    honeypot_hits = _Number(7, int)
    trapped_at = _Number(8, float)  # when this address last requested a trap
    trap_code = _Number(9, float)  # fingerprint_code of the client that did

    def __init__(self, now: float = 0.0, values: list[float] | None = None) -> None:
        self.values: list[float] = (
            values if values is not None else [now, now, 0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0]
        )


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
