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
from scrapeshield.signals import activity, enumeration, honeypot


@dataclass(frozen=True)
class Found:
    no_assets: np.ndarray  # bool: behaviour.no-assets raised on this line
    run: np.ndarray  # int: the sequential run after this line (enumeration.sequential)
    trapped: np.ndarray  # bool: honeypot.hit raised on this line


class _Groups:
    def __init__(self, order: KeyOrder) -> None:
        n = len(order.ke)
        self.at = np.arange(n)
        first = np.empty(n, dtype=bool)
        first[:1] = True
        first[1:] = order.ke[1:] != order.ke[:-1]
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


def detect(
    order: KeyOrder,
    asset: np.ndarray,
    mozilla: np.ndarray,
    number: np.ndarray,
    trap: np.ndarray,
    ts: np.ndarray,
    fp_code: np.ndarray,
) -> Found:
    """Inputs in line order; outputs in line order."""
    o = order.order
    g = _Groups(order)
    a, moz, num, hit, t, code = asset[o], mozilla[o], number[o], trap[o], ts[o], fp_code[o]
    # activity: a claimed browser with MIN_PAGES pages and not one asset so far.
    pages = g.running(~a)
    assets = g.running(a)
    no_assets = ~a & (pages >= activity.MIN_PAGES) & (assets == 0) & moz
    # enumeration: run of small id steps; other lines leave it as it was.
    numeric = num >= 0
    prev = g.last(numeric, before=True)
    last = np.where(prev >= 0, num[np.maximum(prev, 0)], -1)
    step = num - last
    inc = numeric & (last >= 0) & (np.abs(step) > 0) & (np.abs(step) <= enumeration.MAX_STEP)
    reset = numeric & ~inc & (step != 0)
    counted = g.running(inc)
    at_reset = g.last(reset)
    run = counted - np.where(at_reset >= 0, counted[np.maximum(at_reset, 0)], 0)
    # honeypot: a trap now, or one within REMEMBER_FOR by the same fingerprint.
    trapped_at = g.last(hit)
    safe = np.maximum(trapped_at, 0)
    remembered = (trapped_at >= 0) & (code == code[safe]) & (t - t[safe] < honeypot.REMEMBER_FOR)
    trapped = hit | remembered
    out = Found(np.empty_like(no_assets), np.empty_like(run), np.empty_like(trapped))
    out.no_assets[o] = no_assets
    out.run[o] = run
    out.trapped[o] = trapped
    return out


def enumeration_weights(weight: float) -> list[float]:
    """The signal's weight for each run length up to FULL_RUN, rounded as the detector rounds."""
    return [
        round(weight * min(1.0, run / enumeration.FULL_RUN), 1) if run >= enumeration.MIN_RUN else 0.0
        for run in range(enumeration.FULL_RUN + 1)
    ]
