"""Stage 3: signals → a 0–100 score with the reasons behind it."""

from __future__ import annotations

from typing import Final

from scrapeshield.types import Signal

# Weights as reasons show them ("+35"): a handful of distinct values, formatted once each
# (compiled, formatting a float is a generic call). Bounded all the same.
_SHOWN: Final[dict[float, str]] = {}


def score(signals: list[Signal]) -> tuple[float, tuple[str, ...]]:
    """Sum of weights clipped to 0..100; reasons strongest first, one per signal name."""
    if not signals:
        return 0.0, ()
    if len(signals) == 1:  # the usual finding: no sorting, no set
        only = signals[0]
        return _clipped(0.0 + only.weight), (_reason(only),)
    total = 0.0
    seen: set[str] = set()
    ranked: list[Signal] = []
    for signal in _strongest_first(signals):
        if signal.name in seen:
            continue  # a repeated finding counts once
        seen.add(signal.name)
        total += signal.weight
        ranked.append(signal)
    return _clipped(total), tuple([_reason(s) for s in ranked])


def _clipped(total: float) -> float:
    """``total`` clipped to 0..100 and rounded to a tenth. Weights are mostly whole points,
    whose sum ``round`` leaves as it is: it is skipped for them (compiled, ``round(x, 1)``
    is a generic call that formats the float in decimal, ~2,400 instructions)."""
    if total < 0:
        return 0.0
    if total > 100:
        return 100.0
    if total % 1.0 == 0.0:
        return total
    return round(total, 1)


def _strongest_first(signals: list[Signal]) -> list[Signal]:
    """``sorted(signals, key=lambda s: -s.weight)`` (stable), as an insertion sort: a few
    signals at most, and compiled, without a Python call per key."""
    ordered = list(signals)
    for i in range(1, len(ordered)):
        item = ordered[i]
        weight = item.weight
        j = i - 1
        while j >= 0 and ordered[j].weight < weight:
            ordered[j + 1] = ordered[j]
            j -= 1
        ordered[j + 1] = item
    return ordered


def _reason(signal: Signal) -> str:
    weight = signal.weight
    shown = _SHOWN.get(weight)
    if shown is None:
        shown = f"{weight:g}"
        if weight and len(_SHOWN) < 4096:  # (0.0 and -0.0 are one key, shown apart)
            _SHOWN[weight] = shown
    return f"{signal.name} (+{shown}): {signal.reason}"
