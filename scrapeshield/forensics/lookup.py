"""Per distinct value, what the context stage and the user-agent detector make of it.

The batch path never reimplements those stages: it calls the very ``ContextBuilder`` and
``UserAgentDetector`` the engine uses once per distinct user-agent and address, and runs the
policy's route patterns over the distinct paths in polars (``routes``; ``route_for`` itself
when a pattern is outside the syntax both regex engines read alike). The answers go onto
the lines by each line's integer code (``encode``), not by joining on strings.
"""

from __future__ import annotations

import ipaddress
import re

import numpy as np
import polars as pl

from scrapeshield.context import MAX_PATH, ContextBuilder
from scrapeshield.forensics import routes
from scrapeshield.forensics.ipcheck import CANONICAL_V4
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.signals.user_agent import UserAgentDetector
from scrapeshield.state.base import fingerprint_code
from scrapeshield.types import RequestContext


def log_headers(ua: str, referer: str) -> list[tuple[str, str]]:
    """The headers a log line tells of: its user-agent and referer, nothing else."""
    headers = [("user-agent", ua)] if ua else []
    if referer:
        headers.append(("referer", referer))
    return headers


def probe(builder: ContextBuilder, ip: str = "127.0.0.1", path: str = "/", ua: str = "") -> RequestContext:
    return builder.build(0.0, ip, "GET", path, log_headers(ua, ""))


def encode(values: pl.Series) -> tuple[np.ndarray, pl.Series]:
    """Per line, the row of its value in the distinct values; and those values, in row order.

    One hashing pass (a fresh categorical mapping) instead of a unique() and a join.
    """
    coded = values.cast(pl.Categorical(pl.Categories.random()))
    distinct = coded.unique()
    rows = np.empty(len(distinct) and int(distinct.to_physical().to_numpy().max()) + 1, dtype=np.int64)
    rows[distinct.to_physical().to_numpy()] = np.arange(len(distinct))
    return rows[coded.to_physical().to_numpy()], distinct.cast(pl.String)


def path_table(paths: pl.Series, policy: CompiledPolicy) -> pl.DataFrame:
    """path → route, record (and its integer id, -1 none), its number (-1: not numeric),
    asset, cost, honeypot, and each rule's path conditions (columns rp*)."""
    table = routes.path_table(paths, policy)
    if table is None:
        table = _python_routes(paths, policy)
    index = table["route_index"].to_numpy()
    assets = np.array([r.asset for r in policy.routes] + [False])
    costs = np.array([r.cost for r in policy.routes] + [1], dtype=np.int64)
    record = table["record"]
    ids = record.cast(pl.Categorical(pl.Categories.random())).to_physical().cast(pl.Int64)
    table = table.with_columns(
        pl.Series("asset", assets[index]),
        pl.Series("cost", costs[index]),
        pl.when(record == "").then(pl.lit(-1, pl.Int64)).otherwise(ids).alias("record_id"),
        pl.int_range(0, pl.len(), dtype=pl.Int64).alias("path_id"),
    )
    return table.with_columns(*_path_rules(table, policy))


def _python_routes(paths: pl.Series, policy: CompiledPolicy) -> pl.DataFrame:
    """``routes.path_table``'s columns, path by path with the policy's own ``route_for``."""
    position = {id(r): i for i, r in enumerate(policy.routes)}
    clipped, indexes, names, records, numbers, traps = [], [], [], [], [], []
    for raw in paths.to_list():
        path = (raw[:MAX_PATH] if len(raw) > MAX_PATH else raw) or "/"
        route, record = policy.route_for(path)
        record = record[: routes.RECORD_CHARS]
        clipped.append(path)
        indexes.append(position[id(route)] if route is not None else -1)
        names.append(route.name if route is not None else "")
        records.append(record)
        numbers.append(routes.python_number(record[record.find(":") + 1 :] if record else ""))
        traps.append(path in policy.honeypots)
    data = {"path": paths, "p": clipped, "route_index": indexes, "route": names, "record": records,
            "trap": traps, "number": numbers}
    return pl.DataFrame(data, schema_overrides={"route_index": pl.Int64, "number": pl.Int64})


def _path_rules(table: pl.DataFrame, policy: CompiledPolicy) -> list[pl.Expr | pl.Series]:
    """Each rule's path prefix, path regex and route conditions, per distinct path."""
    out: list[pl.Expr | pl.Series] = []
    for i, rule in enumerate(policy.source.rules):
        match = rule.match
        ok: pl.Expr = pl.lit(True)
        if match.path_prefix:
            ok = ok & pl.any_horizontal(pl.col("p").str.starts_with(x) for x in match.path_prefix)
        if match.route:
            ok = ok & pl.col("route").is_in(list(match.route))
        if match.path_regex:  # the user's own regex: Python's re, as the engine runs it
            search = re.compile(match.path_regex).search
            found = pl.Series([search(x) is not None for x in table["p"].to_list()], dtype=pl.Boolean)
            ok = ok & pl.lit(found)
        out.append(ok.alias(f"rp{i}"))
    return out


def ua_table(uas: list[str], policy: CompiledPolicy, builder: ContextBuilder) -> pl.DataFrame:
    """user-agent → class, its signal, fingerprint (as the engine derives it from a log line)."""
    detector = UserAgentDetector(policy)
    classes, names, weights, fps, codes, mozilla, fp_ids, sigs = [], [], [], [], [], [], [], []
    ids: dict[str, int] = {}
    sig_ids: dict[tuple[str, float], int] = {}
    rule_cols: list[list[bool]] = [[] for _ in policy.source.rules]
    ua_classes = [frozenset(r.match.ua_class) for r in policy.source.rules]
    ua_regex = [re.compile(r.match.ua_regex) if r.match.ua_regex else None for r in policy.source.rules]
    for ua in uas:
        cls, signal = detector.classify(ua)
        classes.append(cls.value)
        names.append(signal.name if signal is not None else "")
        weights.append(signal.weight if signal is not None else 0.0)
        sigs.append(sig_ids.setdefault((names[-1], weights[-1]), len(sig_ids)))
        fp = probe(builder, ua=ua).fingerprint
        fps.append(fp)
        fp_ids.append(ids.setdefault(fp, len(ids)))
        codes.append(fingerprint_code(fp))
        mozilla.append(ua.startswith("Mozilla/5.0"))
        for i, col in enumerate(rule_cols):
            ok = not ua_classes[i] or cls.value in ua_classes[i]
            col.append(ok and (ua_regex[i] is None or ua_regex[i].search(ua) is not None))  # type: ignore[union-attr]
    data: dict[str, object] = {
        "ua": uas,
        "ua_class": classes,
        "ua_signal": names,
        "ua_weight": weights,
        "fp": fps,
        "fp_id": fp_ids,
        "fp_code": codes,
        "mozilla": mozilla,
        "ua_sig": sigs,  # the same signal and weight, the same number
    }
    for i, col in enumerate(rule_cols):
        data[f"ru{i}"] = col
    types = {"ua_weight": pl.Float64, "fp_code": pl.Float64, "fp_id": pl.Int64, "ua_sig": pl.Int64}
    return pl.DataFrame(
        data,
        schema_overrides=types,
    )


def ip_table(ips: list[str], policy: CompiledPolicy, builder: ContextBuilder) -> pl.DataFrame:
    """address as logged → canonical address, its /24 or /48 network, each rule's cidr test.

    Canonical dotted quads are kept as they are by the context stage, their network being
    the first three octets; those are done column-wise, any other form goes through it.
    """
    frame = pl.DataFrame({"ip": ips}, schema={"ip": pl.String})
    quick = frame["ip"].str.contains(CANONICAL_V4)
    fast = frame.filter(quick).with_columns(
        pl.col("ip").alias("client"),
        (pl.col("ip").str.replace(r"\.[0-9]+$", "") + ".0/24").alias("network"),
    )
    slow_ips = frame.filter(~quick)["ip"].to_list()
    probes = [probe(builder, ip=ip) for ip in slow_ips]
    slow = pl.DataFrame(
        {"ip": slow_ips, "client": [c.ip for c in probes], "network": [c.network for c in probes]},
        schema={"ip": pl.String, "client": pl.String, "network": pl.String},
    )
    table = pl.concat([fast, slow]).with_columns(
        pl.col("client").rank("dense").cast(pl.Int64).alias("client_id"),
        pl.col("network").rank("dense").cast(pl.Int64).alias("net_id"),
    )
    cidrs = [tuple(ipaddress.ip_network(c, strict=False) for c in r.match.cidr) for r in policy.source.rules]
    for i, nets in enumerate(cidrs):
        if not nets:
            table = table.with_columns(pl.lit(True).alias(f"ri{i}"))
            continue
        inside = [any(ipaddress.ip_address(ip) in net for net in nets) for ip in table["client"].to_list()]
        table = table.with_columns(pl.Series(f"ri{i}", inside, dtype=pl.Boolean))
    return table
