"""The MemoryStore's arithmetic, column-wise: generations, two-bucket windows, distinct sets.

Each function reproduces one part of ``scrapeshield.state.memory`` exactly, in the same
floating-point operations, over lines in the order the engine sees them (time order).
Keys are integers; ``KeyOrder`` groups one key's lines together, keeping their order.
"""

from __future__ import annotations

import numpy as np
import polars as pl

EPOCH_BITS = 16  # a key's epoch lives in the low bits of its integer id
BLOCK = 1 << 18  # lines per block of work (see KeyOrder.blocks)


def generations(ts: np.ndarray, idle_ttl: float) -> np.ndarray:
    """How many times the store had turned its generations over by each line (inclusive).

    MemoryStore turns over on the first update at least ``idle_ttl`` after the last turn.
    """
    n = len(ts)
    turns: list[int] = []
    if n:
        turned = float(ts[0])
        while True:
            j = int(np.searchsorted(ts, turned + idle_ttl, "left"))
            while j > 0 and ts[j - 1] - turned >= idle_ttl:
                j -= 1  # float rounding of turned + ttl: settle on the store's own test
            while j < n and not ts[j] - turned >= idle_ttl:
                j += 1
            if j >= n:
                break
            turns.append(j)
            turned = float(ts[j])
    found: np.ndarray = np.searchsorted(np.asarray(turns, dtype=np.int64), np.arange(n), "right")
    return found.astype(np.int64)


class KeyOrder:
    """Lines grouped by key (stable: time order inside a key), with each key's memory epoch.

    A key's state is dropped when it goes untouched over two turnovers; ``epoch`` counts the
    drops, and ``ke`` (key and epoch in one integer) is what every window is kept under.
    """

    def __init__(self, keys: np.ndarray, gen: np.ndarray) -> None:
        self.order, k = _grouped(keys)
        n = len(k)
        same = np.zeros(n, dtype=bool)
        np.equal(k[1:], k[:-1], out=same[1:])
        g = gen[self.order]
        dropped = np.zeros(n, dtype=bool)
        np.greater_equal(g[1:] - g[:-1], 2, out=dropped[1:])
        dropped &= same
        if dropped.any():
            drops = np.cumsum(dropped)
            epoch = drops - np.maximum.accumulate(np.where(same, 0, drops))
            self.ke = (k << EPOCH_BITS) | epoch  # sorted order
        else:  # (no key was forgotten and seen again: every epoch is 0)
            self.ke = k << EPOCH_BITS
        self._blocks: list[slice] | None = None

    def blocks(self) -> list[slice]:
        """The grouped order cut into runs of whole keys of about BLOCK lines each.

        Every window and detector works key by key, so it can work block by block: arrays
        of a few megabytes stay in cache and are reused by the allocator, where arrays of the
        whole log would be fresh memory the kernel must hand over page by page each time.
        """
        if self._blocks is None:
            n = len(self.ke)
            bounds = np.flatnonzero(self.ke[1:] != self.ke[:-1]) + 1
            self._blocks = []
            start = 0
            while start < n:
                at = int(np.searchsorted(bounds, start + BLOCK, "left"))
                stop = int(bounds[at]) if at < len(bounds) else n
                self._blocks.append(slice(start, stop))
                start = stop
        return self._blocks


def grouped(keys: np.ndarray) -> np.ndarray:
    """Line positions sorted by key, time order (position) kept inside a key."""
    return _grouped(keys)[0]


def _grouped(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``grouped``, and the keys in that order.

    Key and position packed into one integer and sorted as one (numpy's vectorised sort: a
    fifth of a stable sort's time), the keys read back from the high bits; keys too wide to
    pack take polars' stable sort."""
    n = len(keys)
    bits = max(1, n.bit_length())
    if n and int(keys.min()) >= 0 and int(keys.max()).bit_length() + bits <= 62:
        packed = np.sort((keys.astype(np.int64) << bits) | np.arange(n, dtype=np.int64))
        return packed & np.int64((1 << bits) - 1), packed >> bits
    frame = pl.DataFrame({"k": keys}).with_row_index("i")
    order = frame.sort("k", maintain_order=True)["i"].to_numpy().astype(np.int64)
    return order, keys[order].astype(np.int64)


class Timeline:
    """The lines' times (in order) and what every window derives from them, computed once.

    A log's times repeat (a busy second holds many lines): each window's arithmetic is done
    once per distinct time and put onto the lines by the time's number, which is in order."""

    def __init__(self, ts: np.ndarray) -> None:
        self.ts = ts
        n = len(ts)
        new = np.empty(n, dtype=bool)
        new[:1] = True
        np.not_equal(ts[1:], ts[:-1], out=new[1:])
        self._first = np.flatnonzero(new)  # the first line of each distinct time
        self._times = ts[self._first]
        self._number = np.cumsum(new) - 1  # each line's distinct time
        self._starts: dict[float, np.ndarray] = {}
        self._reach: dict[float, np.ndarray] = {}

    def start(self, window: float) -> np.ndarray:
        """The store's bucket start per line: ``now - now % window``."""
        hit = self._starts.get(window)
        if hit is None:
            t = self._times
            hit = self._starts[window] = (t - np.fmod(t, window))[self._number]  # Python's % for t > 0
        return hit

    def reach(self, window: float) -> np.ndarray:
        """Per line, the first line whose horizon (``now - window``) has reached this line's time.

        (One search of every distinct time at once: the queries are in order, which a search
        of each block's lines, grouped by key, would not be — measured three times slower.)"""
        hit = self._reach.get(window)
        if hit is None:
            t = self._times
            first = np.append(self._first, len(self.ts))
            hit = self._reach[window] = first[np.searchsorted(t - window, t, "left")][self._number]
        return hit


def request_usage(order: KeyOrder, times: Timeline, cost_all: np.ndarray, window: float) -> np.ndarray:
    """Two-bucket sliding count: previous bucket × its overlap + current bucket, this line included."""
    out = np.empty(len(times.ts))
    starts = times.start(window)
    for part in order.blocks():
        lines = order.order[part]
        out[lines] = _request_usage(
            order.ke[part], times.ts[lines], starts[lines], cost_all[lines].astype(np.int64), window
        )
    return out


def _request_usage(
    ke: np.ndarray, ts: np.ndarray, start: np.ndarray, cost: np.ndarray, window: float
) -> np.ndarray:
    n = len(ts)
    new = np.empty(n, dtype=bool)
    new[0] = True
    new[1:] = (ke[1:] != ke[:-1]) | (start[1:] != start[:-1])
    firsts = np.nonzero(new)[0]
    bucket = np.cumsum(new) - 1
    totals = np.add.reduceat(cost, firsts).astype(np.float64)
    running = np.cumsum(cost)
    offset = running[firsts] - cost[firsts]
    cur = (running - offset[bucket]).astype(np.float64)
    prev = np.zeros(len(firsts))
    if len(firsts) > 1:
        same_key = ke[firsts[1:]] == ke[firsts[:-1]]
        close = start[firsts[1:]] - start[firsts[:-1]] <= window
        prev[1:] = np.where(same_key & close, totals[:-1], 0.0)
    usage: np.ndarray = prev[bucket] * (1.0 - (ts - start) / window) + cur
    return usage


def distinct_usage(
    order: KeyOrder, times: Timeline, record_all: np.ndarray, counts: np.ndarray, window: float, limit: int
) -> np.ndarray:
    """Distinct records read under a key in the window, this read included, capped as the store caps.

    Only lines where ``counts`` is true read a record into the set (``record_all``: integer
    record ids). A read is the latest of its record until the record is read again; it counts
    while ``ts > now - window``. Returns the usage at every counting line (NaN elsewhere).
    """
    out = np.full(len(times.ts), np.nan)
    for part in order.blocks():
        block = order.order[part]
        pick = counts[block]
        lines = block[pick]  # positions in line order, grouped by key, in time order inside
        if len(lines):
            reach = times.reach(window)[lines]
            live = _distinct_live(order.ke[part][pick], lines, record_all[lines], reach, len(times.ts))
            out[lines] = np.minimum(live, 2 * limit + 16).astype(np.float64)
    return out


def _distinct_live(
    ke: np.ndarray, lines: np.ndarray, rec: np.ndarray, reach: np.ndarray, n_all: int
) -> np.ndarray:
    n = len(lines)
    pos = np.arange(n, dtype=np.int64)
    first = np.empty(n, dtype=bool)
    first[0] = True
    first[1:] = ke[1:] != ke[:-1]
    group = np.cumsum(first) - 1
    starts = np.nonzero(first)[0]
    grp_end = np.append(starts[1:], n)[group]
    # The record's next read under the same key ends this read's turn as "latest".
    by_record = np.argsort(group * (int(rec.max()) + 1) + rec, kind="stable")
    nxt = np.full(n, -1, dtype=np.int64)
    same = (group[by_record[1:]] == group[by_record[:-1]]) & (rec[by_record[1:]] == rec[by_record[:-1]])
    nxt[by_record[:-1][same]] = by_record[1:][same]
    nxt = np.where(nxt < 0, grp_end, nxt)
    # It expires at the first later line whose horizon (now - window, as the store computes
    # it) has reached its time; lines are in time order, so that is one search over all lines
    # (``reach``), then one over this key's reads (integer positions, exact).
    span = np.int64(n_all + 1)
    expire = np.searchsorted(group * span + lines, group * span + reach, "left")
    end = np.minimum(np.minimum(nxt, expire), grp_end)
    delta = np.bincount(pos, minlength=n + 1) - np.bincount(end, minlength=n + 1)
    live: np.ndarray = np.cumsum(delta)[:n]
    return live
