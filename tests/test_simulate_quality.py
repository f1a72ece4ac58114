"""The quality benchmark in its quick form: one table, three protection levels, targets marked."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import quality  # noqa: E402


def test_quick_quality_run_contains_the_naive_crawler_and_spares_people() -> None:
    summary = quality.run(users=1000, seed=3)
    scrapers = {s["persona"]: s for s in summary["scrapers"]}
    naive = scrapers["naive crawler"]
    assert naive["none"] == 1000  # unprotected, it walks the whole site
    assert naive["default"] <= 50 and naive["met"]
    assert scrapers["low and slow"]["ip-limits"] == 1000  # per-IP limits never see it
    people = {p["persona"]: p for p in summary["people"]}
    browsing = people["people browsing"]
    assert browsing["default"]["sessions"] >= 200
    assert browsing["default"]["blocked"] <= quality.BLOCK_TARGET
    # People landing on a profile from a search engine are part of the day (a bare first read).
    arrivals = people["search arrivals"]["default"]
    assert arrivals["sessions"] >= 100 and arrivals["challenged"] <= quality.CHALLENGE_TARGET
    # People who open a profile directly (no referer): at most held for their page's script.
    direct = people["direct arrivals"]["default"]
    assert direct["sessions"] >= 100 and direct["challenged"] <= quality.CHALLENGE_TARGET
    assert direct["blocked"] == 0 and 0.0 <= direct["held"] <= 1.0
    assert "held for its script" in quality.render(summary)
    assert people["search engines"]["default"]["sessions"] >= 10  # many verified crawler visits
    assert all(p["none"]["blocked"] == 0 for p in summary["people"])  # ground truth: nothing refuses
    text = quality.render(summary)
    assert text.count("\n") > 15 and "<= 50 profiles" in text and "naive crawler" in text
    # Decoys and degraded records that reached people are shown too (they are not a refusal).
    assert all(0.0 <= p["default"]["misled"] <= 1.0 for p in summary["people"])
    assert "decoy or degraded record" in text
    for row in summary["scrapers"]:
        assert row["default"] <= row["none"]
