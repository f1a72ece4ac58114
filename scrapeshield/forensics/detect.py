"""The engine's log-computable detectors as column expressions over one client's lines.

Each mirrors a module of ``scrapeshield.signals`` (activity, enumeration, honeypot) and its
ClientMemory fields; ``cke`` is the client's memory slot (address and memory epoch).
"""

from __future__ import annotations

import polars as pl

from scrapeshield.signals import activity, enumeration, honeypot

G = ("cke",)


def no_assets() -> pl.Expr:
    """activity: a claimed browser with ≥ MIN_PAGES pages and not one asset so far."""
    asset = pl.col("asset")
    pages = (~asset).cast(pl.Int32).cum_sum().over(*G)
    assets = asset.cast(pl.Int32).cum_sum().over(*G)
    return (~asset & (pages >= activity.MIN_PAGES) & (assets == 0) & pl.col("mozilla")).alias("s_noassets")


def sequential_run() -> list[pl.Expr]:
    """enumeration: the run of small id steps after each line (carried across other lines)."""
    numeric = pl.col("number") >= 0
    value = pl.when(numeric).then(pl.col("number"))
    last = value.forward_fill().shift(1).over(*G).fill_null(-1)
    step = pl.col("number") - last
    inc = numeric & (last >= 0) & (step.abs() > 0) & (step.abs() <= enumeration.MAX_STEP)
    reset = numeric & ~inc & (step != 0)
    counted = inc.cast(pl.Int64).cum_sum().over(*G)
    return [counted.alias("_c"), reset.alias("_r")]


def run_from_parts() -> pl.Expr:
    base = pl.when(pl.col("_r")).then(pl.col("_c")).forward_fill().over(*G).fill_null(0)
    return (pl.col("_c") - base).alias("run")


def trap() -> pl.Expr:
    """honeypot: a trap now, or one within REMEMBER_FOR by the same fingerprint."""
    hit = pl.col("trap")
    hits = hit.cast(pl.Int32).cum_sum().over(*G)
    at = pl.when(hit).then(pl.col("ts")).forward_fill().over(*G)
    code = pl.when(hit).then(pl.col("fp_code")).forward_fill().over(*G)
    remembered = (hits > 0) & (pl.col("fp_code") == code) & (pl.col("ts") - at < honeypot.REMEMBER_FOR)
    return (hit | remembered.fill_null(False)).alias("s_trap")


def enumeration_weights(weight: float) -> list[float]:
    """The signal's weight for each run length up to FULL_RUN, rounded as the detector rounds."""
    return [
        round(weight * min(1.0, run / enumeration.FULL_RUN), 1) if run >= enumeration.MIN_RUN else 0.0
        for run in range(enumeration.FULL_RUN + 1)
    ]
