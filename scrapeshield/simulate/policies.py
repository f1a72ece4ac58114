"""The protection levels the benchmark compares: none, per-IP limits alone, scrapeshield.

All are the policy as a deployment runs it behind a TLS-terminating edge (the
simulator's requests arrive from ``EDGE`` with X-Forwarded-For and the JA4 header),
so the only overlay on a policy is ``trusted_proxies``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import default_policy_text, parse_policy
from scrapeshield.signals.catalog import SIGNALS

EDGE = "10.0.0.1"
EDGE_NET = "10.0.0.0/8"
LEVELS = ("none", "ip-limits", "default")


def _with_edge(doc: dict[str, Any]) -> dict[str, Any]:
    doc["trusted_proxies"] = sorted({*doc.get("trusted_proxies", []), EDGE_NET})
    return doc


def policy_for(level: str, path: str | Path | None = None) -> CompiledPolicy | None:
    """``None`` for no protection; otherwise the compiled policy of that level."""
    if level == "none":
        return None
    text = Path(path).read_text("utf-8") if path else default_policy_text()
    doc: dict[str, Any] = yaml.safe_load(text) or {}
    if level == "ip-limits":
        doc = ip_limits_only(doc)
    elif level != "default":
        raise ValueError(f"unknown protection level {level!r} (one of {', '.join(LEVELS)})")
    return parse_policy(yaml.safe_dump(_with_edge(doc), sort_keys=False), f"<{level} policy>")


def ip_limits_only(doc: dict[str, Any]) -> dict[str, Any]:
    """The classic defence: request-rate limits per IP, nothing else (no detectors, no
    data budgets, no traps, no rules)."""
    kept = {"version", "trusted_proxies", "identity", "routes", "challenge", "tarpit", "events", "state",
            "fail_mode", "debug_headers"}
    out = {k: v for k, v in doc.items() if k in kept}
    out["limits"] = [
        lim for lim in doc.get("limits", [])
        if lim.get("key") == "ip" and not lim.get("distinct_records", False)
    ]
    out["weights"] = dict.fromkeys(sorted(SIGNALS), 0)
    out["thresholds"] = {"challenge": 100, "block": 100}
    return out
