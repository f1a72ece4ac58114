"""``ClientMemory``: what the detectors remember about one client between its requests.

Compiled with the request path (scripts/compile.py): its named fields are properties over
``values``, which compiled detectors call directly (an attribute implemented in Python, as
they were, cost a Python call at every read and write).
"""

from __future__ import annotations

from typing import Final, final

# A fresh client's values after first_seen and last_seen. (Not ``Final``: mypyc folds a final
# tuple away, and a second constant computed from it then reads an unset value at import.)
_FRESH: tuple[float, ...] = (0.0, 0.0, 0.0, -1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, -1.0,
                             0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0)
MEMORY_SIZE: int = 2 + len(_FRESH)
# A fresh client's values, copied for each new client (a slice copy: no list built from parts).
_TEMPLATE: Final[list[float]] = [0.0, 0.0, *_FRESH]


@final
class ClientMemory:
    """Behaviour a detector remembers about one client between its requests.

    A thin view over a list of floats. Between requests the store keeps them packed (bytes),
    which the cyclic garbage collector never tracks: a million remembered clients then cost
    no collection time (and the host application no latency). Detectors change the view;
    ``StateStore.keep`` stores it back. ``shared`` is not stored: the engine sets it to the
    usages of the shared counters this request touched (see ``signals.shared``), for the
    campaign detectors to read. Each named field reads its slot of ``values`` as an int or
    a float, and stores what it is given.
    """

    __slots__ = ("values", "shared")

    def __init__(self, now: float = 0.0, values: list[float] | None = None) -> None:
        if values is None:
            values = _TEMPLATE[:]
            values[0] = now
            values[1] = now
        self.values: list[float] = values
        # What this request's shared (campaign) counters said; set by the engine, never stored.
        self.shared: tuple[float, ...] = ()

    @property
    def first_seen(self) -> float:
        return float(self.values[0])

    @first_seen.setter
    def first_seen(self, value: float) -> None:
        self.values[0] = value

    @property
    def last_seen(self) -> float:
        return float(self.values[1])

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
    def last_number(self) -> int:  # the last numeric record id read (-1: none yet)
        return int(self.values[5])

    @last_number.setter
    def last_number(self, value: int) -> None:
        self.values[5] = value

    @property
    def sequential_run(self) -> int:  # consecutive reads at a small step from the last id
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
    def trapped_at(self) -> float:  # when this address last requested a trap
        return float(self.values[8])

    @trapped_at.setter
    def trapped_at(self, value: float) -> None:
        self.values[8] = value

    @property
    def trap_code(self) -> float:  # fingerprint_code of the client that did
        return float(self.values[9])

    @trap_code.setter
    def trap_code(self, value: float) -> None:
        self.values[9] = value

    @property
    def last_page_at(self) -> float:  # when the last page (not asset) was requested
        return float(self.values[10])

    @last_page_at.setter
    def last_page_at(self, value: float) -> None:
        self.values[10] = value

    @property
    def gap_mean(self) -> float:  # moving mean of the gaps between pages (seconds)
        return float(self.values[11])

    @gap_mean.setter
    def gap_mean(self, value: float) -> None:
        self.values[11] = value

    @property
    def gap_dev(self) -> float:  # moving mean absolute deviation of those gaps
        return float(self.values[12])

    @gap_dev.setter
    def gap_dev(self, value: float) -> None:
        self.values[12] = value

    @property
    def gaps(self) -> int:  # gaps measured
        return int(self.values[13])

    @gaps.setter
    def gaps(self, value: int) -> None:
        self.values[13] = value

    @property
    def hours_mask(self) -> int:  # bit h: active during hour-of-day h in the last 24 hours
        return int(self.values[14])

    @hours_mask.setter
    def hours_mask(self, value: int) -> None:
        self.values[14] = value

    @property
    def hour_index(self) -> int:  # the hour (since the epoch) of the last request
        return int(self.values[15])

    @hour_index.setter
    def hour_index(self, value: int) -> None:
        self.values[15] = value

    @property
    def record_reads(self) -> int:  # requests for a personal record
        return int(self.values[16])

    @record_reads.setter
    def record_reads(self, value: int) -> None:
        self.values[16] = value

    @property
    def other_pages(self) -> int:  # pages that are not a record (feed, lists, search)
        return int(self.values[17])

    @other_pages.setter
    def other_pages(self, value: int) -> None:
        self.values[17] = value

    @property
    def cold_reads(self) -> int:  # record reads without a referer from the site
        return int(self.values[18])

    @cold_reads.setter
    def cold_reads(self, value: int) -> None:
        self.values[18] = value

    @property
    def list_code(self) -> float:  # path_code of the paginated list being read
        return float(self.values[19])

    @list_code.setter
    def list_code(self, value: float) -> None:
        self.values[19] = value

    @property
    def list_depth(self) -> int:  # pages read of that list in a row
        return int(self.values[20])

    @list_depth.setter
    def list_depth(self, value: int) -> None:
        self.values[20] = value

    @property
    def unknown(self) -> int:  # requests for no known route (the 404s the engine can see)
        return int(self.values[21])

    @unknown.setter
    def unknown(self, value: int) -> None:
        self.values[21] = value

    @property
    def errors(self) -> int:  # 4xx answers reported by the host after the response
        return int(self.values[22])

    @errors.setter
    def errors(self, value: int) -> None:
        self.values[22] = value

    @property
    def searches(self) -> int:  # search requests
        return int(self.values[23])

    @searches.setter
    def searches(self, value: int) -> None:
        self.values[23] = value

    @property
    def search_sorted(self) -> int:  # searches whose query sorted after the previous one
        return int(self.values[24])

    @search_sorted.setter
    def search_sorted(self, value: int) -> None:
        self.values[24] = value

    @property
    def last_query(self) -> float:  # query_code of the last search
        return float(self.values[25])

    @last_query.setter
    def last_query(self, value: float) -> None:
        self.values[25] = value

    @property
    def short_queries(self) -> int:  # searches of 2-3 characters (dictionary prefixes)
        return int(self.values[26])

    @short_queries.setter
    def short_queries(self, value: int) -> None:
        self.values[26] = value

    @property
    def last_step(self) -> int:  # the last step between record ids
        return int(self.values[27])

    @last_step.setter
    def last_step(self, value: int) -> None:
        self.values[27] = value

    @property
    def stride_run(self) -> int:  # steps equal to the one before (any stride)
        return int(self.values[28])

    @stride_run.setter
    def stride_run(self, value: int) -> None:
        self.values[28] = value
