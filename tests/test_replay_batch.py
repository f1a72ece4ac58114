"""The batch path reaches the engine's own decisions, line for line, on the same log.

The live path here is the real Engine with a MemoryStore, one RequestContext per line on a
ManualClock set to the line's time; the batch path computes the same limits and detectors
column-wise. Both replay the same generated logs (several scrapers of each kind, people).
"""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import polars as pl
import pytest

from scrapeshield.forensics.batch import _combos
from scrapeshield.forensics.generate import generate
from scrapeshield.forensics.live import LiveReplay
from scrapeshield.forensics.lookup import log_headers
from scrapeshield.forensics.policy import BATCH_SIGNALS, replay_policy
from scrapeshield.forensics.replay import replay
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.policy.loader import default_policy_text, load_policy, parse_policy
from scrapeshield.types import SEVERITY

SEVERITY_OF = {a.value: s for a, s in SEVERITY.items()}

# More of what the batch path must reproduce than the default policy uses: weigh and
# terminal rules on user-agent, path, address and referer; fingerprint and subnet limits;
# a route-restricted distinct budget; a short idle time, so the store forgets clients
# between one scraper's bursts (generation turnover).
VARIED = """
limits:
  - {name: ip-burst, key: ip, window: 10, limit: 25, action: throttle}
  - {name: ip-minute, key: ip, window: 60, limit: 90, action: throttle}
  - {name: subnet-minute, key: subnet, window: 60, limit: 200, action: tarpit}
  - {name: fp-5m, key: fingerprint, window: 300, limit: 900, action: challenge}
  - {name: ip-profiles-5m, key: ip, window: 300, limit: 30, distinct_records: true,
     routes: [profile-api], action: challenge}
  - {name: ip-pages-30m, key: ip, window: 1800, limit: 120, distinct_records: true,
     routes: [profile-page], action: block}
  - {name: browser-records-hour, key: client, window: 1200, limit: 150, distinct_records: true,
     action: tarpit}
rules:
  - name: robots-and-assets-free
    match: {route: [robots]}
    action: allow
  - name: scrapy-weigh
    match: {ua_regex: 'Scrapy'}
    action: weigh
    weight: 15
  - name: no-referer-api
    match: {path_prefix: [/api/], header_present: [referer]}
    action: weigh
    weight: -5
  - name: office-allow
    match: {cidr: [100.64.0.0/30]}
    action: allow
  - name: search-page-weigh
    match: {path_regex: '^/api/v1/search', method: [GET]}
    action: weigh
    weight: 5
state:
  max_clients: 1000000
  idle_ttl: 1800
"""


def varied_policy() -> CompiledPolicy:
    text = default_policy_text()
    cut = text.index("limits:")
    tail = text[text.index("thresholds:") :]
    tail = tail[: tail.index("state:")] if "state:" in tail else tail
    return parse_policy(text[:cut] + VARIED + tail)


def compare(log: Path, policy: CompiledPolicy) -> tuple[pl.DataFrame, pl.DataFrame]:
    batch = replay([log], policy).decided
    live = replay([log], policy, exact=True).decided
    assert batch.height == live.height > 0
    return batch, live


def assert_same(batch: pl.DataFrame, live: pl.DataFrame, min_outcomes: int = 3) -> None:
    """Per line: the action, what decided it, the score and every limit breached."""
    compared = ["action", "rule", "score", "limits"]
    joined = batch.select("file", "line", "client", *compared).join(
        live.select("file", "line", *[pl.col(c).alias(f"live_{c}") for c in compared]),
        on=["file", "line"],
    )
    assert joined.height == batch.height
    differ = joined.filter(pl.any_horizontal([pl.col(c) != pl.col(f"live_{c}") for c in compared]))
    assert differ.height == 0, differ.head(20)
    # Several outcomes occurred, so the comparison is not between two all-allow runs.
    assert batch["action"].n_unique() >= min_outcomes


@pytest.fixture(scope="module")
def mixed_log(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("replay") / "mixed.log"
    generate(path, people=150, hours=3, scrapers=2, seed=5, users=3000)
    return path


@pytest.fixture(scope="module")
def default_run(mixed_log: Path) -> tuple[pl.DataFrame, pl.DataFrame]:
    return compare(mixed_log, load_policy())


def test_batch_equals_engine_on_default_policy(default_run: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    assert_same(*default_run)


def test_batch_equals_engine_on_a_policy_using_every_reproduced_feature(mixed_log: Path) -> None:
    batch, live = compare(mixed_log, varied_policy())
    assert_same(batch, live)
    rules = set(batch["rule"].unique())
    assert {"rule:robots-and-assets-free", "rule:office-allow"} <= rules
    assert any(rule.startswith("limit:") for rule in rules)
    breached = set(",".join(batch["limits"].unique()).split(","))
    assert {
        "ip-burst",
        "ip-minute",
        "ip-profiles-5m",
        "ip-pages-30m",
        "fp-5m",
        "browser-records-hour",
    } <= breached


def test_first_containment_per_client_is_the_same(default_run: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    batch, live = default_run

    def first(d: pl.DataFrame) -> dict[str, float]:
        hit = d.filter(pl.col("action") != "allow").group_by("client").agg(pl.col("ts").min())
        return dict(hit.iter_rows())

    assert first(batch) == first(live) and len(first(batch)) >= 8


def test_lines_out_of_order_and_across_files_decide_as_if_sorted(mixed_log: Path, tmp_path: Path) -> None:
    lines = mixed_log.read_text().splitlines(keepends=True)
    shuffled = lines[:]
    random.Random(3).shuffle(shuffled)
    half = len(shuffled) // 2
    (tmp_path / "a.log").write_text("".join(shuffled[:half]))
    (tmp_path / "b.log").write_text("".join(shuffled[half:]))
    policy = load_policy()
    split = replay([tmp_path / "a.log", tmp_path / "b.log"], policy).decided
    whole = replay([mixed_log], policy).decided
    live = replay([tmp_path / "a.log", tmp_path / "b.log"], policy, exact=True).decided
    assert_same(split, live)

    def outcome(d: pl.DataFrame) -> dict[str, tuple[str, float]]:
        """Per contained client: its strongest action and the second it was first refused."""
        refused = d.filter(pl.col("action") != "allow")
        return {
            client: (max(actions, key=SEVERITY_OF.__getitem__), first)
            for client, actions, first in refused.group_by("client")
            .agg(pl.col("action"), pl.col("ts").min())
            .iter_rows()
        }

    # The same requests at the same times: the same clients contained, as strongly, from the
    # same second, whichever file or place in it a line came from.
    assert outcome(split) == outcome(whole)
    assert len(outcome(whole)) >= 8


def fired(log: Path) -> set[str]:
    """The signals the real engine raised (with a weight) on a log, line by line."""
    policy = replay_policy(load_policy()).compiled
    live = LiveReplay(policy)
    lines = replay([log], policy).decided.sort("seq")
    names: set[str] = set()
    for ts, ip, path, ua in lines.select("ts", "client", "path", "ua").iter_rows():
        live.clock.set(ts)
        ctx = live.engine.contexts.build(ts, ip, "GET", path, log_headers(ua, ""))
        for reason in live.engine.decide(ctx).reasons:
            name, _, rest = reason.partition(" (+")
            if rest and not rest.startswith("0)"):
                names.add(name)
    return names


def test_the_generated_log_exercises_every_reproduced_signal(mixed_log: Path) -> None:
    found = fired(mixed_log)
    assert {
        "enumeration.sequential",
        "enumeration.strided",
        "behaviour.no-assets",
        "behaviour.breadth",
        "behaviour.deep-pagination",
        "behaviour.not-found",
        "honeypot.hit",
        "ua.http-library",
        "ua.browser-automation",
        "ua.automation-reading",  # a headless build past its reading allowance (user_agent)
    } <= found
    assert not found - BATCH_SIGNALS  # nothing else had a weight


def test_a_client_awake_all_day_is_caught_alike(tmp_path: Path) -> None:
    from scrapeshield.forensics.generate import BROWSERS, _Writer

    w = _Writer()
    events = [
        w.line(1_700_000_000 + i * 2900.0, "203.0.113.77", f"/u/user{i}", BROWSERS[2]) for i in range(40)
    ]
    events += [w.line(1_700_000_100 + i * 40.0, "100.64.9.9", "/", BROWSERS[1]) for i in range(20)]
    log = tmp_path / "day.log"
    log.write_text("".join(text for _, text in sorted(events)))
    assert "behaviour.never-sleeps" in fired(log)
    batch, live = compare(log, load_policy())
    assert_same(batch, live, min_outcomes=1)


def test_combinations_are_numbered_alike_however_wide_the_parts() -> None:
    """Lines share a combination number exactly when they share every part, also when the
    parts do not fit side by side in one integer (64 bits of flags in all, here)."""
    rng = np.random.default_rng(2)
    parts = [rng.integers(0, 3, 5000) << shift for shift in (0, 20, 28, 29, 40, 60)]
    parts.append(rng.integers(0, 2, 5000).astype(bool))
    combo, count = _combos(parts)
    tuples = list(zip(*(p.tolist() for p in parts), strict=True))
    assert count == len(set(tuples)) > 500
    first: dict[tuple[int, ...], int] = {}
    for number, key in zip(combo.tolist(), tuples, strict=True):
        assert first.setdefault(key, number) == number
    assert len(set(first.values())) == count
