"""The replay driver: files → lines in time order → decisions (batch or exact) → findings.

Logs from several servers, or a server whose workers wrote out of order, interleave
times: every line is put in time order first (ties keep file and line order), which is
the order both paths decide in.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from scrapeshield.clock import monotonic
from scrapeshield.forensics.batch import Unsupported, decide_lines
from scrapeshield.forensics.formats import LogFormat, combined, json_lines
from scrapeshield.forensics.ipcheck import AddressCheck
from scrapeshield.forensics.live import LiveReplay, LogLine, parse_text_lines
from scrapeshield.forensics.parse import empty, parse_chunk
from scrapeshield.forensics.policy import replay_policy
from scrapeshield.forensics.reader import Problem, Problems, read_chunks
from scrapeshield.policy.compiled import CompiledPolicy


@dataclass
class Replayed:
    decided: pl.DataFrame  # one row per good line, in the engine's order, with its decision
    problems: Problems
    files: list[str]
    lines: int  # lines read, good and bad
    mode: str  # "batch" | "exact"
    seconds: float
    signals_off: tuple[str, ...] = field(default_factory=tuple)

    @property
    def bad_lines(self) -> int:
        return self.problems.bad_lines

    @property
    def blank_lines(self) -> int:
        return self.lines - self.decided.height - self.bad_lines


def sniff(path: str | Path) -> LogFormat:
    """JSON lines if the first non-blank line starts with ``{``, else combined."""
    try:
        with open(path, "rb") as raw:
            head = raw.read(2)
            raw.seek(0)
            reader = gzip.open(raw) if head == b"\x1f\x8b" else raw
            sample = reader.read(65536)
    except (OSError, EOFError, zlib.error):
        return combined()
    first = next((ln for ln in sample.splitlines() if ln.strip()), b"")
    return json_lines() if first.lstrip().startswith(b"{") else combined()


def load(paths: Sequence[str | Path], fmt: LogFormat | None, problems: Problems) -> tuple[pl.DataFrame, int]:
    """Every good line of every file, in time order (batch parser); and how many lines were read."""
    frames = []
    total = 0
    addresses = AddressCheck()
    for index, path in enumerate(paths):
        use = fmt or sniff(path)
        for chunk in read_chunks(path, problems):
            total += chunk.lines
            frames.append(parse_chunk(chunk, index, use, problems, addresses))
    if not frames:
        return empty(), total
    lines = pl.concat(frames)
    ts = lines["ts"].to_numpy()
    if bool(np.all(ts[1:] >= ts[:-1])):  # in time order already (files follow one another)
        return lines, total
    return lines.sort("ts", "file", "line", maintain_order=True), total


def replay(
    paths: Sequence[str | Path], policy: CompiledPolicy, fmt: LogFormat | None = None, *, exact: bool = False
) -> Replayed:
    started = monotonic()
    problems = Problems()
    plan = replay_policy(policy)
    if exact:
        texts, total = _texts(paths, problems)
        names = [str(p) for p in paths]
        good: list[LogLine] = []
        for index, path in enumerate(paths):
            use = fmt or sniff(path)
            good += parse_text_lines([t for t in texts if t[0] == index], use, names, problems)
        good.sort(key=lambda item: (item.ts, item.file, item.line))
        decided = LiveReplay(plan.compiled).decide_lines(good)
    else:
        lines, total = load(paths, fmt, problems)
        try:
            decided = decide_lines(lines, plan.compiled)
        except Unsupported as exc:  # the policy needs the engine itself: decide line by line
            result = replay(paths, policy, fmt, exact=True)
            result.problems.insert(0, Problem("", 0, f"{exc}: the exact path decided instead"))
            return result
    problems.sort(key=lambda p: (p.file, p.line))
    return Replayed(
        decided,
        problems,
        [str(p) for p in paths],
        total,
        "exact" if exact else "batch",
        monotonic() - started,
        plan.off,
    )


def _texts(paths: Sequence[str | Path], problems: Problems) -> tuple[list[tuple[int, int, str]], int]:
    out: list[tuple[int, int, str]] = []
    for index, path in enumerate(paths):
        for chunk in read_chunks(path, problems):
            text = chunk.data.decode("utf-8", "replace").split("\n")
            for offset, line in enumerate(text[: chunk.lines]):
                out.append((index, chunk.first_line + offset, line))
    return out, len(out)
