"""The MemoryStore's arithmetic, column-wise: generations, two-bucket windows, distinct sets.

Each function reproduces one part of ``scrapeshield.state.memory`` exactly, in the same
floating-point operations, over lines in the order the engine sees them (time order).
Keys are integers; ``KeyOrder`` groups one key's lines together, keeping their order.
"""

from __future__ import annotations

import numpy as np

EPOCH_BITS = 16  # a key's epoch lives in the low bits of its integer id


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
        self.order = np.argsort(keys, kind="stable")
        k = keys[self.order]
        g = gen[self.order]
        same = np.empty(len(k), dtype=bool)
        same[:1] = False
        same[1:] = k[1:] == k[:-1]
        dropped = same & (g - np.roll(g, 1) >= 2)
        first = ~same
        drops = np.cumsum(dropped)
        epoch = drops - np.maximum.accumulate(np.where(first, drops, 0))
        self.ke = (k << EPOCH_BITS) | epoch  # sorted order
        ke = np.empty_like(self.ke)
        ke[self.order] = self.ke
        self.ke_by_line = ke


def request_usage(order: KeyOrder, ts_all: np.ndarray, cost_all: np.ndarray, window: float) -> np.ndarray:
    """Two-bucket sliding count: previous bucket × its overlap + current bucket, this line included."""
    n = len(ts_all)
    if n == 0:
        return np.zeros(0)
    ts = ts_all[order.order]
    cost = cost_all[order.order].astype(np.int64)
    ke = order.ke
    start = ts - np.fmod(ts, window)  # Python's float % for positive times
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
    usage = prev[bucket] * (1.0 - (ts - start) / window) + cur
    out = np.empty(n)
    out[order.order] = usage
    return out


def distinct_usage(
    order: KeyOrder, ts_all: np.ndarray, record_all: np.ndarray, counts: np.ndarray, window: float, limit: int
) -> np.ndarray:
    """Distinct records read under a key in the window, this read included, capped as the store caps.

    Only lines where ``counts`` is true read a record into the set (``record_all``: integer
    record ids). A read is the latest of its record until the record is read again; it counts
    while ``ts > now - window``. Returns the usage at every counting line (NaN elsewhere).
    """
    n_all = len(ts_all)
    out = np.full(n_all, np.nan)
    pick = counts[order.order]
    lines = order.order[pick]
    n = len(lines)
    if n == 0:
        return out
    ke = order.ke[pick]
    ts = ts_all[lines]
    rec = record_all[lines]
    pos = np.arange(n, dtype=np.int64)
    first = np.empty(n, dtype=bool)
    first[0] = True
    first[1:] = ke[1:] != ke[:-1]
    group = np.cumsum(first) - 1
    starts = np.nonzero(first)[0]
    ends = np.append(starts[1:], n)
    grp_end = ends[group]
    by_record = np.lexsort((pos, rec, group))
    nxt = np.full(n, -1, dtype=np.int64)
    same = (group[by_record[1:]] == group[by_record[:-1]]) & (rec[by_record[1:]] == rec[by_record[:-1]])
    nxt[by_record[:-1][same]] = by_record[1:][same]
    nxt = np.where(nxt < 0, grp_end, nxt)
    horizon = ts - window  # a last read is kept while t > now - window
    values, inverse = np.unique(np.concatenate([horizon, ts]), return_inverse=True)
    span = np.int64(len(values) + 1)
    keyed_h = group * span + inverse[:n]  # sorted: groups in order, horizons rising inside each
    expire = np.searchsorted(keyed_h, group * span + inverse[n:], "left")  # first horizon ≥ t
    end = np.minimum(np.minimum(nxt, expire), grp_end)
    delta = np.bincount(pos, minlength=n + 1) - np.bincount(end, minlength=n + 1)
    live = np.cumsum(delta)[:n]
    out[lines] = np.minimum(live, 2 * limit + 16).astype(np.float64)
    return out
