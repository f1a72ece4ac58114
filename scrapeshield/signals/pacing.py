"""Pacing: how regular the gaps between a client's pages are, and whether it ever rests.

People read, think and wander off: the gaps between their pages vary about as much as
they last (a coefficient of variation near 1). A script with a fixed sleep, even with
some jitter, varies by a few percent. And people sleep: an address active in nearly
every hour of a day is a machine (or very many people behind one address, which the
other signals then do not single out).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Final

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.base import DetectorBase
from scrapeshield.state.base import ClientMemory
from scrapeshield.types import RequestContext, Signal

if TYPE_CHECKING:
    from mypy_extensions import i64  # machine integers where compiled; plain ints otherwise

ALPHA: Final = 0.1  # weight of the newest gap in the moving mean and deviation
MIN_GAPS: Final = 20  # gaps measured before regularity means anything
MAX_CV: Final = 0.15  # a deviation below this share of the mean gap is machine-like
BREAK: Final = 1800.0  # a gap longer than this is a break, not pacing
MIN_MEAN: Final = 0.5  # faster is a burst (the rate limits' business), not a pace
AWAKE_HOURS: Final = 22  # hours of the last 24 with activity that make "never sleeps"
# Indices into ClientMemory.values (see state.base): read directly, this runs per request.
_LAST_PAGE: Final = 10
_MEAN: Final = 11
_DEV: Final = 12
_GAPS: Final = 13
_HOURS: Final = 14
_HOUR: Final = 15
_EXACT: Final = 2.0**52  # below it, hour starts are exact floats (see inspect)


class PacingDetector(DetectorBase):
    name = "pacing"

    def __init__(self, policy: CompiledPolicy) -> None:
        self._regular = policy.weights["behaviour.regular-pace"]
        self._sleepless = policy.weights["behaviour.never-sleeps"]
        self._hour: tuple[float, int] = (math.inf, 0)  # (its first second, the hour) of the last request

    def inspect(self, ctx: RequestContext, memory: ClientMemory, out: list[Signal]) -> None:
        v = memory.values
        ts = ctx.ts
        # The hour of the last request, kept: compiled, ``ts // 3600`` calls fmod (a few
        # hundred instructions). Exactly the same number: below 2**52 seconds, ``ts // 3600``
        # is the floor of the exact quotient, so every ``ts`` in [3600k, 3600k + 3600) has k.
        known = self._hour
        if known[0] <= ts < known[0] + 3600.0:
            hour = known[1]
        else:
            hour = int(ts // 3600)
            if 0.0 <= ts < _EXACT:
                self._hour = (hour * 3600.0, hour)
        if hour != v[_HOUR]:
            v[_HOURS] = float(_hours_since(int(v[_HOURS]), int(v[_HOUR]), hour))
            v[_HOUR] = float(hour)
        awake = _bits(int(v[_HOURS]))
        if awake >= AWAKE_HOURS:
            out.append(Signal("behaviour.never-sleeps", self._sleepless,
                              f"active in {awake} of the last 24 hours"))
        if ctx.is_asset:
            return
        last = v[_LAST_PAGE]
        v[_LAST_PAGE] = ctx.ts
        gap = ctx.ts - last
        if last <= 0 or gap < 0 or gap > BREAK:
            return
        if v[_GAPS] == 0:
            v[_MEAN], v[_DEV] = gap, gap / 2  # no evidence of regularity yet
        else:
            # (spelled out: compiled, ``v[i] += x`` on a list item is a generic Python add)
            v[_DEV] = v[_DEV] + ALPHA * (abs(gap - v[_MEAN]) - v[_DEV])
            v[_MEAN] = v[_MEAN] + ALPHA * (gap - v[_MEAN])
        v[_GAPS] = v[_GAPS] + 1.0
        if v[_GAPS] >= MIN_GAPS and v[_MEAN] >= MIN_MEAN and v[_DEV] < MAX_CV * v[_MEAN]:
            out.append(Signal(
                "behaviour.regular-pace", self._regular,
                f"{int(v[_GAPS])} gaps between pages of {v[_MEAN]:.2f}s ± {v[_DEV]:.2f}s",
            ))


def _bits(mask: int) -> int:
    """``mask.bit_count()`` for the 24-bit hour mask (compiled, a method of ``int`` is a
    generic call; this loop runs on a machine integer)."""
    if not 0 <= mask <= 0x3FFFFFFF:  # only a damaged stored value (a short int compiled)
        return mask.bit_count()
    m: i64 = mask
    count: i64 = 0
    while m:
        m &= m - 1
        count += 1
    return count


def _hours_since(mask: int, last: int, hour: int) -> int:
    """The hour-of-day mask after moving from hour ``last`` to ``hour`` (hours since the
    epoch): hours skipped in between were idle, so their bits from a day ago go."""
    if last < 0 or hour - last >= 24 or hour < last:
        mask = 0
    else:
        for h in range(last + 1, hour):
            mask &= ~(1 << (h % 24))
    return mask | (1 << (hour % 24))
