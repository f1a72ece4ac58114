"""Per distinct value, what the context stage and the user-agent detector make of it.

The batch path never reimplements those stages: it calls the very ``ContextBuilder``,
``route_for`` and ``UserAgentDetector`` the engine uses, once per distinct path, user-agent
and address, and joins the answers onto the lines. A log has many lines and few distinct
values, so this is both exact and cheap.
"""

from __future__ import annotations

import ipaddress
import re

import polars as pl

from scrapeshield.context import MAX_PATH, ContextBuilder
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


def path_table(paths: list[str], policy: CompiledPolicy) -> pl.DataFrame:
    """path → route, record, its number (-1: not numeric), asset, cost, honeypot, rule parts."""
    routes, records, numbers, assets, costs, traps, record_ids = [], [], [], [], [], [], []
    ids: dict[str, int] = {"": -1}
    rule_cols: list[list[bool]] = [[] for _ in policy.source.rules]
    prefix = [tuple(r.match.path_prefix) for r in policy.source.rules]
    regex = [re.compile(r.match.path_regex) if r.match.path_regex else None for r in policy.source.rules]
    wanted = [frozenset(r.match.route) for r in policy.source.rules]
    for raw in paths:
        path = raw[:MAX_PATH] if len(raw) > MAX_PATH else raw
        path = path or "/"
        route, record = policy.route_for(path)
        record = record[:160]
        name = route.name if route is not None else ""
        routes.append(name)
        records.append(record)
        record_ids.append(ids.setdefault(record, len(ids)))
        digits = record[record.find(":") + 1 :] if record else ""
        numbers.append(int(digits) if digits.isdigit() and len(digits) < 19 else -1)
        assets.append(route.asset if route is not None else False)
        costs.append(route.cost if route is not None else 1)
        traps.append(path in policy.honeypots)
        for i, col in enumerate(rule_cols):
            ok = not prefix[i] or path.startswith(prefix[i])
            ok = ok and (regex[i] is None or regex[i].search(path) is not None)  # type: ignore[union-attr]
            col.append(ok and (not wanted[i] or name in wanted[i]))
    data: dict[str, object] = {
        "path": paths,
        "route": routes,
        "record": records,
        "record_id": record_ids,
        "path_id": list(range(len(paths))),
        "number": numbers,
        "asset": assets,
        "cost": costs,
        "trap": traps,
    }
    for i, col in enumerate(rule_cols):
        data[f"rp{i}"] = col
    overrides = {"number": pl.Int64, "cost": pl.Int64, "record_id": pl.Int64, "path_id": pl.Int64}
    return pl.DataFrame(data, schema_overrides=overrides)


def ua_table(uas: list[str], policy: CompiledPolicy, builder: ContextBuilder) -> pl.DataFrame:
    """user-agent → class, its signal, fingerprint (as the engine derives it from a log line)."""
    detector = UserAgentDetector(policy)
    classes, names, weights, fps, codes, mozilla, fp_ids = [], [], [], [], [], [], []
    ids: dict[str, int] = {}
    rule_cols: list[list[bool]] = [[] for _ in policy.source.rules]
    ua_classes = [frozenset(r.match.ua_class) for r in policy.source.rules]
    ua_regex = [re.compile(r.match.ua_regex) if r.match.ua_regex else None for r in policy.source.rules]
    for ua in uas:
        cls, signal = detector.classify(ua)
        classes.append(cls.value)
        names.append(signal.name if signal is not None else "")
        weights.append(signal.weight if signal is not None else 0.0)
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
    }
    for i, col in enumerate(rule_cols):
        data[f"ru{i}"] = col
    return pl.DataFrame(
        data, schema_overrides={"ua_weight": pl.Float64, "fp_code": pl.Float64, "fp_id": pl.Int64}
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
