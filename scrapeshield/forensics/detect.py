"""The engine's log-computable detectors, column-wise over each client's lines.

Each mirrors a module of ``scrapeshield.signals`` (activity, enumeration, honeypot) and the
ClientMemory fields it keeps. The lines are taken grouped by client memory slot (address
and memory epoch, ``KeyOrder``), where "so far" is a running sum and "the last one" a
running maximum of positions, both restarted at each group's first line.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scrapeshield.forensics.windows import KeyOrder
from scrapeshield.signals import activity, enumeration, honeypot, navigation


@dataclass(frozen=True)
class Found:
    """Per line: which signal the detector raised there (``run``: the sequential run length)."""

    no_assets: np.ndarray  # behaviour.no-assets
    run: np.ndarray  # enumeration.sequential (weight by run length)
    trapped: np.ndarray  # honeypot.hit
    strided: np.ndarray  # enumeration.strided
    breadth: np.ndarray  # behaviour.breadth
    few_assets: np.ndarray  # behaviour.few-assets
    not_found: np.ndarray  # behaviour.not-found
    deep: np.ndarray  # behaviour.deep-pagination

    def columns(self) -> dict[str, np.ndarray]:
        return {f"s_{name}": getattr(self, name) for name in self.__dataclass_fields__}


@dataclass(frozen=True)
class Lines:
    """What the detectors read of each line (in line order)."""

    asset: np.ndarray
    mozilla: np.ndarray
    number: np.ndarray  # numeric record id, -1 for none
    trap: np.ndarray
    ts: np.ndarray
    fp_code: np.ndarray
    record: np.ndarray  # bool: the line reads a personal record
    routed: np.ndarray  # bool: the path matched a route of the policy
    listed: np.ndarray  # bool: the route is a paginated list (detection.paginated_routes)
    path_id: np.ndarray  # int: the same path, the same id


class _Groups:
    def __init__(self, ke: np.ndarray) -> None:
        n = len(ke)
        self.at = np.arange(n)
        first = np.empty(n, dtype=bool)
        first[:1] = True
        first[1:] = ke[1:] != ke[:-1]
        self.start = np.maximum.accumulate(np.where(first, self.at, 0))

    def running(self, values: np.ndarray) -> np.ndarray:
        """Sum so far inside the group, this line included."""
        total = np.cumsum(values.astype(np.int64))
        return total - (total[self.start] - values[self.start].astype(np.int64))

    def last(self, mask: np.ndarray, *, before: bool = False) -> np.ndarray:
        """Position of the group's last line where ``mask`` holds (this one included unless
        ``before``); -1 when there is none."""
        latest = np.maximum.accumulate(np.where(mask, self.at, -1))
        if before:
            latest = np.concatenate([[-1], latest[:-1]])
        return np.where(latest >= self.start, latest, -1)


def detect(order: KeyOrder, lines: Lines, mapped: bool) -> Found:
    """``mapped``: the policy has a route map (without one, "no route" says nothing)."""
    n = len(order.order)
    out = {name: np.empty(n, dtype=np.int64 if name == "run" else bool)
           for name in Found.__dataclass_fields__}
    for part in order.blocks():  # whole keys at a time (see KeyOrder.blocks)
        o = order.order[part]
        found = _detect(o, _Groups(order.ke[part]), lines, mapped)
        for name, values in out.items():
            values[o] = getattr(found, name)
    return Found(**out)


def _detect(o: np.ndarray, g: _Groups, lines: Lines, mapped: bool) -> Found:
    """The detectors over some keys' lines (``o``: their positions, grouped by key)."""
    a, moz, num, hit = lines.asset[o], lines.mozilla[o], lines.number[o], lines.trap[o]
    t, code = lines.ts[o], lines.fp_code[o]
    # activity: a claimed browser with MIN_PAGES pages and not one asset so far.
    pages = g.running(~a)
    assets = g.running(a)
    no_assets = ~a & (pages >= activity.MIN_PAGES) & (assets == 0) & moz
    # enumeration: run of small id steps (other lines leave it as it was) …
    numeric = num >= 0
    prev = g.last(numeric, before=True)
    last = np.where(prev >= 0, num[np.maximum(prev, 0)], -1)
    step = num - last
    inc = numeric & (last >= 0) & (np.abs(step) > 0) & (np.abs(step) <= enumeration.MAX_STEP)
    run = _run_since(g, inc, numeric & ~inc & (step != 0))
    # … and runs of one equal step (the first move compares with the memory's initial 0).
    move = numeric & (last >= 0) & (step != 0)
    before = g.last(move, before=True)
    same = move & (step == np.where(before >= 0, step[np.maximum(before, 0)], 0))
    stride_run = _run_since(g, same, move & ~same)
    latest = g.last(move)
    last_step = np.where(latest >= 0, step[np.maximum(latest, 0)], 0)
    strided = numeric & (stride_run >= enumeration.MIN_STRIDES) & (np.abs(last_step) > enumeration.MAX_STEP)
    # honeypot: a trap now, or one within REMEMBER_FOR by the same fingerprint.
    trapped_at = g.last(hit)
    safe = np.maximum(trapped_at, 0)
    remembered = (trapped_at >= 0) & (code == code[safe]) & (t - t[safe] < honeypot.REMEMBER_FOR)
    # navigation: counts so far (asset lines raise nothing; no API token is ever in a log).
    rec, routed = lines.record[o], lines.routed[o]
    reads = g.running(~a & rec)
    other = g.running(~a & ~rec & routed)
    misses = g.running(~a & ~rec & ~routed) if mapped else np.zeros(len(o), dtype=np.int64)
    requests = g.running(np.ones(len(o), dtype=bool))
    breadth = ~a & (reads >= navigation.MIN_READS) & (reads > navigation.BREADTH * (other + 1))
    not_found = ~a & (misses >= navigation.MIN_MISSES) & (misses > navigation.MISS_SHARE * requests)
    few = (
        ~a
        & (pages >= navigation.MIN_PAGES)
        & (assets > 0)
        & (assets < navigation.ASSETS_PER_PAGE * pages)
        & moz
    )
    listed = ~a & lines.listed[o]
    path = lines.path_id[o]
    prev_list = g.last(listed, before=True)
    same_list = listed & (prev_list >= 0) & (path == path[np.maximum(prev_list, 0)])
    depth = _run_since(g, same_list, listed & ~same_list) + 1
    deep = listed & (depth >= navigation.DEEP)
    return Found(no_assets, run, hit | remembered, strided, breadth, few, not_found, deep)


def _run_since(g: _Groups, grows: np.ndarray, resets: np.ndarray) -> np.ndarray:
    """A run that ``grows`` by one and ``resets`` to 0 (other lines keep it), per group."""
    counted = g.running(grows)
    at_reset = g.last(resets)
    return counted - np.where(at_reset >= 0, counted[np.maximum(at_reset, 0)], 0)


def enumeration_weights(weight: float) -> list[float]:
    """The signal's weight for each run length up to FULL_RUN, rounded as the detector rounds."""
    return [
        round(weight * min(1.0, run / enumeration.FULL_RUN), 1) if run >= enumeration.MIN_RUN else 0.0
        for run in range(enumeration.FULL_RUN + 1)
    ]
