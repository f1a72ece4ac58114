"""Stage 3: signals → a 0–100 score with the reasons behind it."""

from __future__ import annotations

from scrapeshield.types import Signal


def score(signals: list[Signal]) -> tuple[float, tuple[str, ...]]:
    """Sum of weights clipped to 0..100; reasons strongest first, one per signal name."""
    if not signals:
        return 0.0, ()
    if len(signals) == 1:  # the usual finding: no sorting, no set
        only = signals[0]
        total = 0.0 + only.weight
        value = 0.0 if total < 0 else 100.0 if total > 100 else round(total, 1)
        return value, (f"{only.name} (+{only.weight:g}): {only.reason}",)
    total = 0.0
    seen: set[str] = set()
    ranked: list[Signal] = []
    for signal in sorted(signals, key=lambda s: -s.weight):
        if signal.name in seen:
            continue  # a repeated finding counts once
        seen.add(signal.name)
        total += signal.weight
        ranked.append(signal)
    value = 0.0 if total < 0 else 100.0 if total > 100 else round(total, 1)
    return value, tuple(f"{s.name} (+{s.weight:g}): {s.reason}" for s in ranked)
