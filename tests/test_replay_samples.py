"""The annotated sample logs (tests/samples/logs/README.md): bad lines by number, findings.

Both paths — batch and the line-at-a-time engine — must report the same bad lines and
reach the same decisions on every sample.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import polars as pl
import pytest

from scrapeshield.forensics import formats
from scrapeshield.forensics.formats import LogFormat
from scrapeshield.forensics.replay import Replayed, replay
from scrapeshield.policy.loader import load_policy

SAMPLES = Path(__file__).parent / "samples" / "logs"
CUSTOM = 'nginx:$request_time $remote_addr [$time_local] "$request" $status "$http_user_agent"'

# file → (format, bad lines {number: reason}, contained clients, clients never refused)
EXPECTED: dict[str, tuple[str | None, dict[int, str], set[str], set[str]]] = {
    "combined.log": (
        None,
        {},
        {"198.51.100.7", "198.51.100.8"},
        {"203.0.113.10", "2001:db8::5", "2001:db8::6"},
    ),
    "malformed.log": (
        None,
        {
            3: "not a log line in this format",
            5: "bad timestamp",
            7: "bad client address",
            9: "not a log line in this format",
            11: "not a log line in this format",
        },
        {"198.51.100.7"},
        {"203.0.113.10"},
    ),
    "access.jsonl": (None, {4: "not a log line in this format"}, {"198.51.100.9"}, {"203.0.113.11"}),
    "custom.log": (CUSTOM, {}, {"198.51.100.12"}, {"203.0.113.12"}),
}


def run(name: str, exact: bool) -> Replayed:
    spec = EXPECTED[name][0]
    fmt: LogFormat | None = formats.resolve(spec) if spec else None
    return replay([SAMPLES / name], load_policy(), fmt, exact=exact)


@pytest.mark.parametrize("exact", [False, True], ids=["batch", "exact"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample(name: str, exact: bool) -> None:
    _, bad, contained, people = EXPECTED[name]
    result = run(name, exact)
    assert {p.line: p.reason for p in result.problems if p.line} == bad
    refused = set(result.decided.filter(pl.col("action") != "allow")["client"].unique())
    assert refused == contained
    assert not refused & people
    assert set(result.decided["client"].unique()) >= people
    blank = sum(1 for ln in (SAMPLES / name).read_bytes().split(b"\n")[:-1] if not ln.strip())
    assert result.decided.height == result.lines - len(bad) - blank
    assert (result.bad_lines, result.blank_lines) == (len(bad), blank)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_both_paths_decide_every_sample_alike(name: str) -> None:
    columns = ["file", "line", "client", "action", "rule", "score", "limits"]
    batch = run(name, exact=False).decided.select(columns).sort("file", "line")
    live = run(name, exact=True).decided.select(columns).sort("file", "line")
    assert batch.equals(live)


@pytest.mark.parametrize("exact", [False, True], ids=["batch", "exact"])
def test_truncated_gzip_keeps_the_lines_before_the_cut(tmp_path: Path, exact: bool) -> None:
    text = (SAMPLES / "combined.log").read_bytes() * 40
    packed = gzip.compress(text)
    cut = tmp_path / "cut.log.gz"
    cut.write_bytes(packed[: len(packed) * 2 // 3])
    result = replay([cut], load_policy(), exact=exact)
    assert any(p.line == 0 and "truncated gzip" in p.reason for p in result.problems)
    assert result.decided.height > 100
    # The last, partial line may be cut anywhere: at most that one line is reported bad.
    assert len([p for p in result.problems if p.line]) <= 1


def test_whole_gzip_reads_like_the_plain_file(tmp_path: Path) -> None:
    packed = tmp_path / "combined.log.gz"
    packed.write_bytes(gzip.compress((SAMPLES / "combined.log").read_bytes()))
    plain = replay([SAMPLES / "combined.log"], load_policy()).decided.drop("file")
    unpacked = replay([packed], load_policy()).decided.drop("file")
    assert plain.equals(unpacked)


def test_corrupt_gzip_and_missing_file_are_reported_not_raised(tmp_path: Path) -> None:
    bad = tmp_path / "bad.log.gz"
    packed = bytearray(gzip.compress((SAMPLES / "combined.log").read_bytes() * 20))
    packed[40:80] = b"\x00" * 40
    bad.write_bytes(bytes(packed))
    result = replay([bad, tmp_path / "missing.log", SAMPLES / "combined.log"], load_policy())
    reasons = [p.reason for p in result.problems if p.line == 0]
    assert any("corrupt gzip" in r for r in reasons)
    assert any("cannot open" in r for r in reasons)
    assert result.decided.filter(pl.col("file") == 2).height == 54


def test_format_errors_say_what_is_wrong() -> None:
    with pytest.raises(formats.FormatError, match="lacks the group"):
        formats.resolve("regex:^(?P<ip>\\S+) (?P<time>\\S+)")
    with pytest.raises(formats.FormatError, match="does not compile"):
        formats.resolve("regex:(?P<ip>")
    with pytest.raises(formats.FormatError, match="unknown log format"):
        formats.resolve("w3c")
    with pytest.raises(formats.FormatError, match="unknown JSON field"):
        formats.resolve("json", json_fields={"colour": "c"})


def test_json_times_read_alike_by_both_parsers(tmp_path: Path) -> None:
    times = [
        '"2023-11-14T22:13:20+00:00"',
        '"2023-11-14T22:13:21Z"',
        '"2023-11-14T22:13:22.250+01:00"',
        '"2023-11-14T22:13:23"',
        "1700000004",
        '"1700000005.5"',
        '"2023-11-14 22:13:26"',
        '"2023-11-14T22:13:27.1234567Z"',
        '"yesterday"',
        '"nan"',
        "null",
    ]
    lines = [
        f'{{"time": {t}, "remote_addr": "203.0.113.20", "request": "GET /u/li.wei HTTP/1.1", '
        f'"status": 200, "http_user_agent": "curl/8.5.0"}}'
        for t in times
    ]
    log = tmp_path / "times.jsonl"
    log.write_text("\n".join(lines) + "\n")
    batch = replay([log], load_policy())
    exact = replay([log], load_policy(), exact=True)
    assert (
        batch.decided.select("line", "ts")
        .sort("line")
        .equals(exact.decided.select("line", "ts").sort("line"))
    )
    assert [(p.line, p.reason) for p in batch.problems] == [(p.line, p.reason) for p in exact.problems]
    assert {p.line for p in batch.problems} == {7, 8, 9, 10, 11}
    got = dict(batch.decided.select("line", "ts").iter_rows())
    assert got[1] == 1_700_000_000.0 and got[3] == 1_700_000_002.25 - 3600 and got[4] == 1_700_000_003.0
    assert got[6] == 1_700_000_005.5


def test_separators_and_unicode_digits_read_alike_by_both_parsers(tmp_path: Path) -> None:
    """Python's \\s counts \\x1c-\\x1f as space and Rust's does not; the engines' \\d tables
    differ too. Lines with those characters in every field get the same verdict and fields
    from both parsers."""
    when = "[14/Nov/2023:10:00:{:02d} +0000]"
    lines = [
        '203.0.113.1\x1c - - {} "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"',
        '203.0.113.2 -\x1d - {} "GET / HTTP/1.1" 200 5 "-" "curl/8.5.0"',
        '203.0.113.3 - - {} "GET /u/ann HTTP/1.1" 200 5\x1f "-" "curl/8.5.0"',
        '203.0.113.4 - - {} "GET /u/bob HTTP/1.1" \u0662\u0660\u0660 5 "-" "curl/8.5.0"',
        '203.0.113.5 - - {} "GET /u/cat HTTP/1.1" 200 5 "-" "curl\x1e/8.5.0"',
        '203.0.113.6 - - {} "GET /u/dan HTTP/1.1" 200 5 "https://x.example/\x1c" "Mozilla/5.0"',
        '203.0.113.7 - - {} "GET /u/eve HTTP/1.1" \U00010d40\U00010d41\U00010d42 5 "-" "curl/8.5.0"',
        '203.0.113.8 - - {} "GET /u/fay HTTP/1.1" 404 \x1c "-" "curl/8.5.0"',
    ]
    log = tmp_path / "odd.log"
    log.write_text("".join(line.format(when.format(i)) + "\n" for i, line in enumerate(lines)), "utf-8")
    batch = replay([log], load_policy(), exact=False)
    live = replay([log], load_policy(), exact=True)
    assert [(p.line, p.reason) for p in batch.problems] == [(p.line, p.reason) for p in live.problems]
    assert 0 < batch.decided.height < len(lines)  # some lines are good, some are not
    columns = ["line", "client", "method", "path", "status", "ua", "fp", "action", "score"]
    assert batch.decided.select(columns).equals(live.decided.select(columns))
