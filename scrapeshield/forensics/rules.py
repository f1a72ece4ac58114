"""The policy's rules, column-wise: which terminal rule decides a line, which weigh rules add.

Path, user-agent and address conditions were evaluated once per distinct value in
``lookup`` (columns rp*, ru*, ri*); the method and the two headers a log records
(user-agent, referer) are tested here.
"""

from __future__ import annotations

import polars as pl

from scrapeshield.policy.compiled import CompiledPolicy


def rule_columns(policy: CompiledPolicy) -> list[pl.Expr]:
    """``terminal``: index of the first terminal rule that matched (-1 none); ``weigh``: bits."""
    if not policy.rules:
        return [pl.lit(-1).alias("terminal"), pl.lit(0, pl.Int64).alias("weigh")]
    matched = [_match(policy, i) for i in range(len(policy.rules))]
    terminal: pl.Expr = pl.lit(-1)
    for i in reversed(range(len(policy.rules))):
        if policy.rules[i].action is not None:
            terminal = pl.when(matched[i]).then(pl.lit(i)).otherwise(terminal)
    weigh: pl.Expr = pl.lit(0, pl.Int64)
    for i, rule in enumerate(policy.rules):
        if rule.action is None:
            before = (terminal == -1) | (terminal > i)
            weigh = weigh + pl.when(matched[i] & before).then(pl.lit(1 << i, pl.Int64)).otherwise(0)
    return [terminal.alias("terminal"), weigh.alias("weigh")]


def _match(policy: CompiledPolicy, i: int) -> pl.Expr:
    match = policy.source.rules[i].match
    ok = pl.col(f"rp{i}") & pl.col(f"ru{i}") & pl.col(f"ri{i}")
    if match.method:
        ok = ok & pl.col("method").is_in([m.upper() for m in match.method])
    present = {"user-agent": pl.col("ua") != "", "referer": pl.col("referer") != ""}
    values = {"user-agent": pl.col("ua"), "referer": pl.col("referer")}
    if match.header_present:
        any_of: pl.Expr = pl.lit(False)
        for name in match.header_present:
            any_of = any_of | present.get(name.lower(), pl.lit(False))
        ok = ok & any_of
    for name, value in match.header_equals.items():
        key = name.lower()
        ok = ok & (present[key] & (values[key] == value) if key in present else pl.lit(False))
    return ok
