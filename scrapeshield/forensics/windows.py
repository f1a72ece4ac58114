"""The MemoryStore's arithmetic, column-wise: generations, two-bucket windows, distinct sets.

Each function reproduces one part of ``scrapeshield.state.memory`` exactly, in the same
floating-point operations, over lines sorted in the order the engine sees them.
"""

from __future__ import annotations

import numpy as np
import polars as pl


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
    return found.astype(np.int32)


def epochs(frame: pl.DataFrame, key: str) -> pl.Series:
    """Per line, how many times its key's state had been dropped (untouched over two turnovers)."""
    prev = pl.col("gen").shift(1).over(key)
    dropped = (pl.col("gen") - prev >= 2).fill_null(False)
    return frame.select(dropped.cast(pl.Int32).cum_sum().over(key).alias("e"))["e"]


def request_usage(frame: pl.DataFrame, window: float) -> np.ndarray:
    """Two-bucket sliding count: previous bucket × its overlap + current bucket, this line included.

    ``frame``: columns k (key), e (epoch), ts, cost, in the engine's order.
    """
    ts = frame["ts"].to_numpy()
    start = ts - np.fmod(ts, window)  # Python's float % for positive times
    tagged = frame.select("k", "e", "cost").with_columns(pl.Series("start", start))
    cur = tagged.select(pl.col("cost").cum_sum().over("k", "e", "start").cast(pl.Float64))["cost"]
    buckets = (
        tagged.group_by("k", "e", "start", maintain_order=True)
        .agg(pl.col("cost").sum().cast(pl.Float64).alias("total"))
        .with_columns(
            pl.col("start").shift(1).over("k", "e").alias("ps"),
            pl.col("total").shift(1).over("k", "e").alias("pt"),
        )
        .select(
            "k",
            "e",
            "start",
            pl.when(pl.col("start") - pl.col("ps") <= window)
            .then(pl.col("pt"))
            .otherwise(0.0)
            .fill_null(0.0)
            .alias("prev"),
        )
    )
    prev = tagged.join(buckets, on=["k", "e", "start"], how="left", maintain_order="left")["prev"].to_numpy()
    usage: np.ndarray = prev * (1.0 - (ts - start) / window) + cur.to_numpy()
    return usage


def distinct_usage(occ: pl.DataFrame, window: float, limit: int) -> np.ndarray:
    """Distinct records read under a key in the window, this read included, capped as the store caps.

    ``occ``: the reads that count (columns k, e, ts, record), in the engine's order. A read is
    the latest of its record until the record is read again; it counts while ``ts > now - window``.
    """
    n = occ.height
    if n == 0:
        return np.zeros(0)
    order = occ.with_row_index("i").sort("k", "e", "i", maintain_order=True)
    changed = (pl.col("k") != pl.col("k").shift(1)) | (pl.col("e") != pl.col("e").shift(1))
    group = order.select(changed.fill_null(True).cast(pl.Int64).cum_sum().alias("g"))["g"].to_numpy()
    pos = np.arange(n, dtype=np.int64)
    order = order.with_columns(pl.Series("g", group), pl.Series("pos", pos))
    grp_end = order.select((pl.col("pos").max().over("g") + 1).alias("x"))["x"].to_numpy()
    nxt = order.select(pl.col("pos").shift(-1).over("g", "record").fill_null(-1).alias("x"))["x"].to_numpy()
    nxt = np.where(nxt < 0, grp_end, nxt)
    ts = order["ts"].to_numpy()
    horizon = ts - window  # what the store compares a last read against: kept while t > now - window
    values, inverse = np.unique(np.concatenate([horizon, ts]), return_inverse=True)
    rank_h, rank_t = inverse[:n].astype(np.int64), inverse[n:].astype(np.int64)
    span = np.int64(len(values) + 1)
    comp_h = group * span + rank_h  # sorted: groups in order, horizons rising inside each
    expire = np.searchsorted(comp_h, group * span + rank_t, "left")  # first line whose horizon ≥ t
    end = np.minimum(np.minimum(nxt, expire), grp_end)
    delta = np.zeros(n + 1, dtype=np.int64)
    np.add.at(delta, pos, 1)
    np.add.at(delta, end, -1)
    live = np.cumsum(delta)[:n]
    capped = np.minimum(live, 2 * limit + 16).astype(np.float64)
    out = np.empty(n)
    out[order["i"].to_numpy()] = capped
    return out
