"""The batch parser: chunks of log lines → typed columns with polars (regex and time in Rust).

Output columns, one row per good line: ``file`` (index), ``line`` (1-based), ``ts``
(epoch seconds, float), ``ip``, ``method``, ``path``, ``query``, ``status``, ``referer``,
``ua``. A line that does not parse is reported with its number and why, and skipped.
"""

from __future__ import annotations

import io

import polars as pl

from scrapeshield.forensics.formats import COMBINED_TIME, EPOCH_TIME, ISO_TIME, LogFormat
from scrapeshield.forensics.ipcheck import AddressCheck
from scrapeshield.forensics.reader import Chunk, Problem, Problems

SCHEMA = {
    "file": pl.UInt16,
    "line": pl.Int64,
    "ts": pl.Float64,
    "ip": pl.String,
    "method": pl.String,
    "path": pl.String,
    "query": pl.String,
    "status": pl.Int32,
    "referer": pl.String,
    "ua": pl.String,
}
MAX_REPORTED = 1000  # bad lines listed one by one; beyond this they are only counted


def empty() -> pl.DataFrame:
    return pl.DataFrame(schema=SCHEMA)


def lines_frame(chunk: Chunk) -> pl.DataFrame:
    """One row per line of the chunk (empty lines included), numbered from the file's start."""
    expected = chunk.lines
    if b"\x00" in chunk.data:  # the reader's separator: such a chunk is split by hand
        return _split(chunk, expected)
    frame = pl.read_csv(
        io.BytesIO(chunk.data),
        has_header=False,
        separator="\x00",
        quote_char=None,
        new_columns=["text"],
        schema={"text": pl.String},
        truncate_ragged_lines=True,
        encoding="utf8-lossy",
        comment_prefix=None,
        raise_if_empty=False,
    )
    if frame.height != expected:  # the CSV reader disagreed on line ends: split by hand
        return _split(chunk, expected)
    return _numbered(frame, chunk)


def _split(chunk: Chunk, expected: int) -> pl.DataFrame:
    text = chunk.data.decode("utf-8", "replace").split("\n")
    return _numbered(pl.DataFrame({"text": text[:expected]}, schema={"text": pl.String}), chunk)


def _numbered(frame: pl.DataFrame, chunk: Chunk) -> pl.DataFrame:
    numbers = pl.int_range(chunk.first_line, chunk.first_line + frame.height, dtype=pl.Int64).alias("line")
    if b"\r" not in chunk.data:  # (no CRLF line ends: spare a copy of every line)
        return frame.with_columns(numbers)
    return frame.with_columns(pl.col("text").str.strip_chars_end("\r"), numbers)


def parse_chunk(
    chunk: Chunk,
    file_index: int,
    fmt: LogFormat,
    problems: Problems,
    addresses: AddressCheck | None = None,
) -> pl.DataFrame:
    raw = lines_frame(chunk)
    fields = _json_fields(fmt) if fmt.kind == "json" else _regex_fields(fmt)
    frame = raw.select("line", "text", *fields)
    frame = frame.with_columns(_timestamp(fmt).alias("ts"))
    frame = frame.with_columns(
        pl.col("target").str.split_exact("?", 1).struct.rename_fields(["path", "query"]).alias("pq"),
        pl.col("status").cast(pl.Int32, strict=False).fill_null(0),
        pl.col("method").fill_null("GET").str.to_uppercase(),
        _dash(pl.col("referer")),
        _dash(pl.col("ua")),
    ).unnest("pq")
    valid = (addresses or AddressCheck()).valid(frame["ip"])
    frame = frame.with_columns(valid.alias("ip_ok"))
    frame = frame.with_columns(
        pl.when(pl.col("ip").is_null() | pl.col("target").is_null())
        .then(pl.lit("not a log line in this format"))
        .when(pl.col("ts").is_null())
        .then(pl.lit("bad timestamp"))
        .when(~pl.col("ip_ok"))
        .then(pl.lit("bad client address"))
        .when(~pl.col("path").str.starts_with("/"))
        .then(pl.lit("bad request target"))
        .otherwise(None)
        .alias("bad")
    )
    flagged = frame.filter(pl.col("bad").is_not_null())
    bad = flagged.filter(pl.col("text").str.strip_chars() != "")  # blank lines are not bad
    problems.bad_lines += bad.height
    _report(bad, chunk.file, problems)
    good = frame.filter(pl.col("bad").is_null()) if flagged.height else frame
    return good.select(
        pl.lit(file_index, pl.UInt16).alias("file"),
        "line",
        "ts",
        "ip",
        "method",
        "path",
        pl.col("query").fill_null(""),
        "status",
        "referer",
        "ua",
    )


def _regex_fields(fmt: LogFormat) -> list[pl.Expr]:
    groups = pl.col("text").str.extract_groups(fmt.pattern).alias("g")
    names = set(fmt.regex.groupindex)
    return [
        groups.struct.field(f).alias(f) if f in names else pl.lit(None, pl.String).alias(f)
        for f in ("ip", "time", "method", "target", "status", "referer", "ua")
    ]


def _json_fields(fmt: LogFormat) -> list[pl.Expr]:
    text = pl.col("text")

    def first(name: str) -> pl.Expr:
        keys = fmt.json_keys[name]
        return pl.coalesce([text.str.json_path_match(f"$['{k}']") for k in keys])

    request = first("request").str.extract_groups(r'^(?P<m>[A-Za-z]+) (?P<t>[^ "]+)')
    return [
        first("ip").alias("ip"),
        first("time").alias("time"),
        pl.coalesce(first("method"), request.struct.field("m")).alias("method"),
        pl.coalesce(first("target"), request.struct.field("t")).alias("target"),
        first("status").alias("status"),
        first("referer").alias("referer"),
        first("ua").alias("ua"),
    ]


def _timestamp(fmt: LogFormat) -> pl.Expr:
    """Epoch seconds as float (µs precision), null when the time does not parse."""
    time = pl.col("time")
    epoch = pl.when(time.str.contains(EPOCH_TIME)).then(time.cast(pl.Float64, strict=False))
    if fmt.time_format == "epoch":
        return epoch
    if fmt.time_format in ("iso", "auto"):
        text = pl.when(time.str.contains(ISO_TIME)).then(time.str.replace(r"Z$", "+00:00"))
        dated = pl.Datetime("us", "UTC")
        with_offset = text.str.strptime(dated, "%Y-%m-%dT%H:%M:%S%.f%:z", strict=False)
        naive = text.str.strptime(pl.Datetime("us"), "%Y-%m-%dT%H:%M:%S%.f", strict=False)
        iso = _to_epoch(pl.coalesce(with_offset, naive.dt.replace_time_zone("UTC")))
        return pl.coalesce(iso, epoch) if fmt.time_format == "auto" else iso
    parsed = time.str.strptime(pl.Datetime("us"), fmt.time_format or COMBINED_TIME, strict=False)
    if "%z" in (fmt.time_format or COMBINED_TIME):
        return _to_epoch(time.str.strptime(pl.Datetime("us", "UTC"), fmt.time_format, strict=False))
    return _to_epoch(parsed.dt.replace_time_zone("UTC"))  # a time without offset is UTC


def _to_epoch(dt: pl.Expr) -> pl.Expr:
    return dt.dt.epoch("us").cast(pl.Float64) / 1e6


def _dash(col: pl.Expr) -> pl.Expr:
    """Logs write "-" for an absent header."""
    return pl.when(col.is_null() | (col == "-")).then(pl.lit("")).otherwise(col).alias(col.meta.output_name())


def _report(bad: pl.DataFrame, file: str, problems: list[Problem]) -> None:
    room = MAX_REPORTED - sum(1 for p in problems if p.line > 0)
    for line, reason in bad.select("line", "bad").head(max(0, room)).iter_rows():
        problems.append(Problem(file, int(line), str(reason)))
    if bad.height > room:
        problems.append(Problem(file, 0, f"{bad.height - max(0, room)} more bad lines not listed"))
