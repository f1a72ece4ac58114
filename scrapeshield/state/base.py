"""The counter-state protocol: what the engine needs from a backend, nothing more.

One ``update`` call per decision carries every counter the request touches, so
a networked backend (Redis) answers a decision in one round trip.
"""

from __future__ import annotations

import hashlib
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
    ``shared`` is not stored: the engine sets it to the usages of the shared counters this
    request touched (see ``signals.shared``), for the campaign detectors to read.
    """

    __slots__ = ("values", "shared")

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
    # Behaviour (signals.pacing, signals.navigation, signals.enumeration): see those modules.
    last_page_at = _Number(10, float)  # when the last page (not asset) was requested
    gap_mean = _Number(11, float)  # moving mean of the gaps between pages (seconds)
    gap_dev = _Number(12, float)  # moving mean absolute deviation of those gaps
    gaps = _Number(13, int)  # gaps measured
    hours_mask = _Number(14, int)  # bit h: active during hour-of-day h in the last 24 hours
    hour_index = _Number(15, int)  # the hour (since the epoch) of the last request
    record_reads = _Number(16, int)  # requests for a personal record
    other_pages = _Number(17, int)  # pages that are not a record (feed, lists, search)
    cold_reads = _Number(18, int)  # record reads without a referer from the site
    list_code = _Number(19, float)  # path_code of the paginated list being read
    list_depth = _Number(20, int)  # pages read of that list in a row
    unknown = _Number(21, int)  # requests for no known route (the 404s the engine can see)
    errors = _Number(22, int)  # 4xx answers reported by the host after the response
    searches = _Number(23, int)  # search requests
    search_sorted = _Number(24, int)  # searches whose query sorted after the previous one
    last_query = _Number(25, float)  # query_code of the last search
    short_queries = _Number(26, int)  # searches of 2-3 characters (dictionary prefixes)
    last_step = _Number(27, int)  # the last step between record ids
    stride_run = _Number(28, int)  # steps equal to the one before (any stride)

    def __init__(self, now: float = 0.0, values: list[float] | None = None) -> None:
        self.values: list[float] = values if values is not None else [now, now, *_FRESH]
        # What this request's shared (campaign) counters said; set by the engine, never stored.
        self.shared: tuple[float, ...] = ()


# A fresh client's values after first_seen and last_seen.
_FRESH = (0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
          0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
MEMORY_SIZE = 2 + len(_FRESH)


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
