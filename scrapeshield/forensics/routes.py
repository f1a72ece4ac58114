"""Route matching column-wise: ``CompiledPolicy.route_for`` over every distinct path at once.

A log holds hundreds of thousands of distinct paths (every profile has its own), too many to
hand to Python one by one. The route patterns the policy compiles use a small subset of
regular-expression syntax (escaped literals, ``[^/]+``, ``[0-9]{1,18}``, ``.*``, named
groups, ``\\Z``) that means the same in Python's ``re`` and in Rust's ``regex`` (polars), so
each pattern is run in polars, in the very order ``route_for`` tries them. Anything outside
that subset (or a pattern polars refuses) makes ``path_table`` return None, and the caller
matches path by path with ``route_for`` itself; tests/test_replay_routes.py holds the two
to the same answers on awkward paths.
"""

from __future__ import annotations

import re

import numpy as np
import polars as pl

from scrapeshield.context import MAX_PATH
from scrapeshield.policy.compiled import CompiledPolicy, CompiledRoute

RECORD_CHARS = 160  # the engine keeps this much of a record's text
# What a compiled route pattern may contain besides escaped literals (see policy.compiled).
_SUBSET = re.compile(r"\(\?P<\w+>(?:\[\^/\]\+|\[0-9\]\{1,18\}|\.\*)\)|\\.|[^\\()\[\]{}.*+?|^$]", re.S)


def rust_pattern(route: CompiledRoute) -> str | None:
    """The route's pattern for polars (anchored, each escape spelt as a code point), or None."""
    python = route.regex.pattern
    if not python.endswith(r"\Z") or _SUBSET.sub("", python[:-2]):
        return None
    body = re.sub(r"\\(.)", lambda m: f"\\x{{{ord(m.group(1)):X}}}", python[:-2], flags=re.S)
    return f"^{body}$"  # without the multi-line flag, Rust's $ is the very end, as \Z is


def path_table(paths: pl.Series, policy: CompiledPolicy) -> pl.DataFrame | None:
    """path → route index (-1: none), route name, record, its number (-1: not numeric),
    honeypot, the path the rules test; None when a pattern is outside the shared subset."""
    routes = policy.routes
    patterns = [rust_pattern(r) for r in routes]
    if any(p is None for p in patterns):
        return None
    position = {id(r): i for i, r in enumerate(routes)}
    path = pl.col("path").str.slice(0, MAX_PATH)
    frame = pl.DataFrame({"path": paths}, schema={"path": pl.String}).with_columns(
        pl.when(path == "").then(pl.lit("/")).otherwise(path).alias("p")
    )
    p = pl.col("p")
    # route_for's first segment: between the leading "/" and the next one.
    segment = p.str.slice(1).str.split_exact("/", 1).struct.field("field_0").fill_null("")
    known = [key for key in policy.routes_by_segment if key]
    chosen: pl.Expr = pl.lit(-1, pl.Int64)
    for key, candidates in policy.routes_by_segment.items():
        first: pl.Expr = pl.lit(-1, pl.Int64)
        for route in reversed(candidates):
            i = position[id(route)]
            first = pl.when(p.str.contains(patterns[i] or "")).then(pl.lit(i, pl.Int64)).otherwise(first)
        group = ~segment.is_in(known) if key == "" else segment == key
        chosen = pl.when(group).then(first).otherwise(chosen)
    try:
        frame = frame.with_columns(chosen.alias("route_index"))
    except pl.exceptions.PolarsError:  # a pattern Rust's regex refuses: match in Python instead
        return None
    record: pl.Expr = pl.lit("")
    for i, route in enumerate(routes):
        if route.record is not None:
            group_no = route.regex.groupindex[route.record]
            value = p.str.extract(patterns[i] or "", group_no)
            text = (pl.lit(f"{route.record_kind}:") + value).str.slice(0, RECORD_CHARS)
            record = pl.when(pl.col("route_index") == i).then(text).otherwise(record)
    names = [r.name for r in routes] + [""]
    frame = frame.with_columns(
        pl.col("route_index")
        .replace_strict(list(range(-1, len(routes))), [names[-1], *names[:-1]], return_dtype=pl.String)
        .alias("route"),
        record.alias("record"),
        p.is_in(list(policy.honeypots)).alias("trap"),
    )
    return frame.with_columns(_numbers(frame["record"]).alias("number"))


def _numbers(records: pl.Series) -> pl.Series:
    """The enumeration detector's number: the text after the first ":" if it is 1 to 18
    ASCII digits, else -1."""
    digits = records.str.splitn(":", 2).struct.field("field_1").fill_null("")
    plain = digits.str.contains(r"^[0-9]{1,18}$")
    values = np.where(plain.to_numpy(), digits.cast(pl.Int64, strict=False).fill_null(-1).to_numpy(), -1)
    return pl.Series(values, dtype=pl.Int64)


def python_number(text: str) -> int:
    """The same number for one record's text, line by line."""
    return int(text) if text.isascii() and text.isdigit() and len(text) < 19 else -1
