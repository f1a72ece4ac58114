"""The batch path: every line's decision, computed column-wise, equal to the engine's.

Stages as in the engine: context (``lookup``: the real ContextBuilder and route map per
distinct value), limits (``windows``: the MemoryStore's arithmetic), detectors (``detect``),
then score and decide — the real ``score()`` and ``decide()``, called once per distinct
combination of findings rather than once per line.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl

from scrapeshield.context import ContextBuilder
from scrapeshield.decide import decide
from scrapeshield.errors import ScrapeshieldError
from scrapeshield.forensics import detect
from scrapeshield.forensics.live import LIVE_SCHEMA as DECIDED_SCHEMA
from scrapeshield.forensics.lookup import encode, ip_table, path_table, ua_table
from scrapeshield.forensics.rules import rule_columns
from scrapeshield.forensics.windows import KeyOrder, Timeline, distinct_usage, generations, request_usage
from scrapeshield.policy.compiled import CompiledPolicy, CompiledRule
from scrapeshield.score import score
from scrapeshield.signals import enumeration, pacing, user_agent
from scrapeshield.types import LimitBreach, Signal, UAClass

# Limit keys → the column that holds them; account, session and token are never in a log.
# "client" is the engine's address-and-fingerprint key (one browser behind an address).
KEY_COLUMNS = {"ip": "client_id", "subnet": "net_id", "fingerprint": "fp_id", "client": "cf_id"}
ABSENT_KEYS = frozenset({"account", "session", "token"})
SCRATCH = ("p",)  # table columns the lines do not need


class Unsupported(ScrapeshieldError):
    """The policy uses something the batch path cannot reproduce (use the exact path)."""


def decide_lines(lines: pl.DataFrame, policy: CompiledPolicy) -> pl.DataFrame:
    """``lines`` (parse.SCHEMA) in the engine's order → the same rows with their decisions."""
    unknown = set(policy.limits_by_key) - set(KEY_COLUMNS) - ABSENT_KEYS
    if unknown:
        raise Unsupported(f"limits keyed by {', '.join(sorted(unknown))} are not reproduced in batch")
    privacy = policy.source.detection.privacy
    if privacy.default != "public" or privacy.route_levels:
        raise Unsupported("privacy levels by route are not reproduced in batch")
    if lines.height == 0:
        return pl.DataFrame(schema=DECIDED_SCHEMA)
    builder = ContextBuilder(policy)
    df = lines.with_columns(pl.col("method").str.slice(0, 16))
    df = _attach(df, "path", lambda paths: path_table(paths, policy))
    df = _attach(df, "ua", lambda uas: ua_table(uas.to_list(), policy, builder))
    df = _attach(df, "ip", lambda ips: ip_table(ips.to_list(), policy, builder))
    state = policy.source.state
    gen = generations(df["ts"].to_numpy(), float(state.idle_ttl))
    df = df.with_columns((pl.col("client_id") * (pl.col("fp_id").max() + 1) + pl.col("fp_id")).alias("cf_id"))
    kinds = {"ip"} | set(policy.limits_by_key)
    orders = {
        kind: KeyOrder(df[column].to_numpy(), gen) for kind, column in KEY_COLUMNS.items() if kind in kinds
    }
    lines_in = detect.Lines(
        asset=df["asset"].to_numpy(),
        mozilla=df["mozilla"].to_numpy(),
        number=df["number"].to_numpy(),
        trap=df["trap"].to_numpy(),
        ts=df["ts"].to_numpy(),
        fp_code=df["fp_code"].to_numpy(),
        record=(df["record_id"] >= 0).to_numpy(),
        routed=_by_route(policy, df, lambda name: name != ""),
        listed=_by_route(policy, df, lambda name: name in policy.paginated_routes),
        path_id=df["path_id"].to_numpy(),
    )
    found = detect.detect(orders["ip"], lines_in, bool(policy.routes))
    df = df.with_columns(
        *[pl.Series(name, values) for name, values in found.columns().items()],
        pl.Series("s_never_sleeps", _sleepless(orders["ip"], lines_in.ts)),
        pl.Series("s_automation_reading", _automation_reading(df, policy, gen)),
    )
    df = df.with_columns(pl.Series("breaches", _breaches(df, policy, orders)), *rule_columns(policy))
    return _decisions(df, policy)


def _attach(df: pl.DataFrame, key: str, table_of: Callable[[pl.Series], pl.DataFrame]) -> pl.DataFrame:
    """The table of ``key``'s distinct values (made by ``table_of``), row by row onto the lines."""
    rows, distinct = encode(df[key])
    table = table_of(distinct)
    if not table[key].equals(distinct):  # (a table in its own order) line it up with the values
        table = distinct.to_frame(key).join(table, on=key, how="left", maintain_order="left")
    picked = table.select(pl.exclude(key, *SCRATCH)).select(pl.all().gather(pl.Series(rows)))
    return df.hstack(picked)


def _by_route(policy: CompiledPolicy, df: pl.DataFrame, test: Callable[[str], bool]) -> np.ndarray:
    """Per line, ``test`` of its route's name ("" for none): asked once per route, put onto
    the lines by route number (not a string comparison per line)."""
    answers = np.array([test(r.name) for r in policy.routes] + [test("")], dtype=bool)
    found: np.ndarray = answers[df["route_index"].to_numpy()]  # (-1, no route: the last)
    return found


def _breaches(df: pl.DataFrame, policy: CompiledPolicy, orders: dict[str, KeyOrder]) -> np.ndarray:
    """Per line, a bit per limit (by ``CompiledLimit.index``) that this line took over budget."""
    bits = np.zeros(df.height, dtype=np.int64)
    times = Timeline(df["ts"].to_numpy())
    route_cost = df["cost"].to_numpy()
    record = df["record_id"].to_numpy()
    reads = record >= 0
    # Limits on the same routes share their cost and read columns, worked out once.
    costs: dict[frozenset[str] | None, tuple[np.ndarray, np.ndarray]] = {None: (route_cost, reads)}
    for kind, limits in policy.limits_by_key.items():
        if kind in ABSENT_KEYS:
            continue
        for lim in limits:
            routes = lim.routes
            if routes is not None and routes not in costs:
                applies = _by_route(policy, df, routes.__contains__)
                costs[routes] = (np.where(applies, route_cost, 0), applies & reads)
            cost, counts = costs[routes]
            if lim.distinct:
                usage = distinct_usage(orders[kind], times, record, counts, lim.window, lim.limit)
                over = counts & (usage > lim.limit)  # NaN (lines that read no record) is never over
            else:
                usage = request_usage(orders[kind], times, cost, lim.window)
                over = (usage > lim.limit) & (cost != 0)
            bits[over] |= np.int64(1) << lim.index
    return bits


def _automation_reading(df: pl.DataFrame, policy: CompiledPolicy, gen: np.ndarray) -> np.ndarray:
    """user_agent: a declared automation build reading a record once its fingerprint's clients
    have read AUTOMATION_RECORDS distinct records within the breadth window (signals.shared).

    A log line has no Host header, so no referer is the site's: every record line is a bare
    read and counts in the fingerprint's set. The set's key is touched by the lines that
    touch it in the engine (records and assets), which is what keeps it in the store."""
    camp = policy.source.detection.campaigns
    automation = (df["ua_class"] == UAClass.AUTOMATION.value).to_numpy()
    found: np.ndarray = np.zeros(len(df), dtype=bool)
    if not automation.any():  # the usual log: no declared automation, nothing to count
        return found
    # Only the fingerprints automation lines carry: each key's set is its own lines' alone,
    # so the other lines (most of a log) need not be grouped and counted at all.
    fp = df["fp_id"].to_numpy()
    mine = np.flatnonzero(np.isin(fp, np.unique(fp[automation])))
    fp = fp[mine]
    record = df["record_id"].to_numpy()[mine]
    asset = df["asset"].to_numpy()[mine]
    reads = (record >= 0) & ~asset
    keys = np.where(reads | asset, fp, fp.max() + 1)  # (lines that leave the key alone: apart)
    cap = camp.breadth_records * camp.breadth_per_client // 2 + 1  # the set's limit (signals.shared)
    usage = distinct_usage(KeyOrder(keys, gen[mine]), Timeline(df["ts"].to_numpy()[mine]), record,
                           reads, float(camp.breadth_window), cap)
    found[mine] = automation[mine] & reads & (usage >= user_agent.AUTOMATION_RECORDS)
    return found


# Boolean finding columns → the signal each stands for (weights from the policy).
FLAGS = {
    "s_no_assets": "behaviour.no-assets",
    "s_trapped": "honeypot.hit",
    "s_strided": "enumeration.strided",
    "s_breadth": "behaviour.breadth",
    "s_few_assets": "behaviour.few-assets",
    "s_not_found": "behaviour.not-found",
    "s_deep": "behaviour.deep-pagination",
    "s_never_sleeps": "behaviour.never-sleeps",
    "s_automation_reading": "ua.automation-reading",
}


def _sleepless(order: KeyOrder, ts: np.ndarray) -> np.ndarray:
    """pacing: active in AWAKE_HOURS of the last 24 hours (the hours h - 23 … h).

    A key's lines are in time order, so its hours never go down: the distinct hours in the
    window are the hour changes counted from the key's first line inside it (one search)."""
    hours = np.floor_divide(ts, 3600.0)
    hour = (hours - hours.min()).astype(np.int64) if len(ts) else np.zeros(0, np.int64)
    span = int(hour.max()) + 1 if len(ts) else 1
    awake = np.empty(len(ts), dtype=np.int64)
    for part in order.blocks():
        lines = order.order[part]
        ke, h = order.ke[part], hour[lines]
        first = np.empty(len(lines), dtype=bool)
        first[0] = True
        np.not_equal(ke[1:], ke[:-1], out=first[1:])
        changed = first.copy()
        changed[1:] |= h[1:] != h[:-1]
        counted = np.cumsum(changed)
        key = (np.cumsum(first) - 1) * span
        start = np.searchsorted(key + h, key + np.maximum(h - 23, 0), "left")
        awake[lines] = counted - counted[start] + 1
    out: np.ndarray = awake >= pacing.AWAKE_HOURS
    return out


def _decisions(df: pl.DataFrame, policy: CompiledPolicy) -> pl.DataFrame:
    """Score and decide once per distinct combination of what decides a line; then per line."""
    run_weight = detect.enumeration_weights(policy.weights["enumeration.sequential"])
    parts = {
        "ua_sig": df["ua_sig"].to_numpy(),
        "s_run": np.clip(df["s_run"].to_numpy(), 0, enumeration.FULL_RUN),
        **{column: df[column].to_numpy() for column in FLAGS},
        "weigh": df["weigh"].to_numpy(),
        "breaches": df["breaches"].to_numpy(),
        "terminal": df["terminal"].to_numpy() + 1,  # (-1: none)
        "has_record": df["record_id"].to_numpy() >= 0,
    }
    combo, count = _combos(list(parts.values()))
    first = np.empty(count, dtype=np.int64)
    first[combo] = np.arange(len(combo))  # a line of each combination (any: they agree)
    ua = df.select("ua_signal", "ua_weight")[first]
    # The engine meets breaches key by key, in the order of limits_by_key; ties keep the first.
    ordered = [lim for limits in policy.limits_by_key.values() for lim in limits]
    actions, rules, scores, breached_names = [], [], [], []
    for at, (ua_signal, ua_weight) in zip(first, ua.iter_rows(), strict=True):
        c = {name: int(values[at]) for name, values in parts.items()}
        signals: list[Signal] = []
        for index, rule in enumerate(policy.rules):
            if c["weigh"] >> index & 1:
                signals.append(Signal(f"rule.{rule.name}", rule.weight, "policy rule"))
        if ua_signal:
            signals.append(Signal(ua_signal, ua_weight, ""))
        if run_weight[c["s_run"]]:
            signals.append(Signal("enumeration.sequential", run_weight[c["s_run"]], ""))
        signals += [Signal(name, policy.weights[name], "") for column, name in FLAGS.items() if c[column]]
        points, reasons = score(signals)
        breached = [
            LimitBreach(lim.name, lim.action, 0.0, "") for lim in ordered if c["breaches"] >> lim.index & 1
        ]
        chosen: CompiledRule | None = policy.rules[c["terminal"] - 1] if c["terminal"] else None
        decision = decide(policy, "", points, reasons, breached, chosen, None, bool(c["has_record"]))
        actions.append(decision.action.value)
        rules.append(decision.rule)
        scores.append(decision.score)
        breached_names.append(",".join(sorted(b.name for b in breached)))
    picked = pl.Series(combo)
    out = df.with_columns(
        pl.Series("action", actions, dtype=pl.String).gather(picked),
        pl.Series("rule", rules, dtype=pl.String).gather(picked),
        pl.Series("score", scores, dtype=pl.Float64).gather(picked),
        pl.Series("limits", breached_names, dtype=pl.String).gather(picked),
    )
    return out.with_row_index("seq").select(
        [pl.col(name).cast(dtype) for name, dtype in DECIDED_SCHEMA.items()]
    )


def _combos(parts: list[np.ndarray]) -> tuple[np.ndarray, int]:
    """Per line, the number (0…count-1) of its combination of ``parts`` (non-negative integers).

    The parts are packed side by side into one integer while they fit, renumbered densely
    when they would not, so any number of parts works without overflow.
    """
    key = np.zeros(len(parts[0]), dtype=np.int64)
    bits = 0
    for part in parts:
        values = part.astype(np.int64)
        width = max(1, int(values.max()).bit_length())
        if width > 31:  # (wide bit sets: their few distinct values, numbered)
            values, count = _dense(values)
            width = max(1, (count - 1).bit_length())
        if bits + width > 62:
            key, count = _dense(key)
            bits = max(1, (count - 1).bit_length())
        key = (key << width) | values
        bits += width
    return _dense(key)


def _dense(key: np.ndarray) -> tuple[np.ndarray, int]:
    distinct = np.sort(pl.Series(key).unique().to_numpy())  # (a hash: few values, many lines)
    return np.searchsorted(distinct, key), len(distinct)
