"""The exact path: each log line → RequestContext → the real Engine, on a clock set to the line.

Slow (every line is one full decision) but it *is* the engine, so the batch path is tested
against it. Lines are parsed here with Python's ``re`` from the same format definitions.
"""

from __future__ import annotations

import inspect
import json
import re
from datetime import UTC, datetime
from typing import NamedTuple

import polars as pl

from scrapeshield.clock import ManualClock
from scrapeshield.context import ContextBuilder
from scrapeshield.engine import Engine
from scrapeshield.forensics.formats import EPOCH_TIME, ISO_TIME, LogFormat
from scrapeshield.forensics.ipcheck import valid_ip
from scrapeshield.forensics.lookup import log_headers
from scrapeshield.forensics.parse import MAX_REPORTED
from scrapeshield.forensics.reader import Problem, Problems
from scrapeshield.policy.compiled import CompiledPolicy
from scrapeshield.state.memory import MemoryStore

_HAS_QUERY = "query" in inspect.signature(ContextBuilder.build).parameters
_ISO = re.compile(ISO_TIME)
_EPOCH = re.compile(EPOCH_TIME)


class LogLine(NamedTuple):
    file: int
    line: int
    ts: float
    ip: str
    method: str
    path: str
    query: str
    status: int
    referer: str
    ua: str


class LineParser:
    """One line of text → a LogLine, or the reason it is not one."""

    def __init__(self, fmt: LogFormat) -> None:
        self.fmt = fmt
        self._regex = fmt.regex if fmt.kind == "regex" else None
        self._times: dict[str, float | None] = {}

    def parse(self, text: str, file: int, number: int) -> LogLine | str:
        fields = self._fields(text.rstrip("\r"))
        if fields is None or not fields.get("ip") or not fields.get("target"):
            return "not a log line in this format"
        ts = self._time(str(fields["time"])) if fields.get("time") else None
        if ts is None:
            return "bad timestamp"
        ip = str(fields["ip"])
        if not valid_ip(ip):
            return "bad client address"
        path, _, query = str(fields["target"]).partition("?")
        if not path.startswith("/"):
            return "bad request target"
        status = str(fields.get("status") or "")
        return LogLine(
            file,
            number,
            ts,
            ip,
            str(fields.get("method") or "GET").upper(),
            path,
            query,
            int(status) if status.isascii() and status.isdigit() else 0,
            _dash(fields.get("referer")),
            _dash(fields.get("ua")),
        )

    def _fields(self, text: str) -> dict[str, object] | None:
        if self._regex is not None:
            m = self._regex.match(text)
            return m.groupdict() if m is not None else None
        try:
            doc = json.loads(text)
        except ValueError:
            return None
        if not isinstance(doc, dict):
            return None
        out: dict[str, object] = {}
        for name, keys in self.fmt.json_keys.items():
            value = next((doc[k] for k in keys if doc.get(k) is not None), None)
            out[name] = None if value is None else value if isinstance(value, str) else json.dumps(value)
        request = out.pop("request", None)
        if isinstance(request, str) and (not out.get("method") or not out.get("target")):
            method, _, rest = request.partition(" ")
            out.setdefault("method", method)
            out["method"] = out["method"] or method
            out["target"] = out.get("target") or rest.split(" ")[0]
        return out

    def _time(self, text: str) -> float | None:
        if text in self._times:
            return self._times[text]
        if len(self._times) > 100_000:
            self._times.clear()
        self._times[text] = value = _parse_time(text, self.fmt.time_format)
        return value


def _parse_time(text: str, fmt: str) -> float | None:
    """Epoch seconds; a time written without an offset is UTC (as the batch parser reads it)."""
    try:
        if fmt in ("iso", "auto") and _ISO.match(text):
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
        elif fmt in ("epoch", "auto"):
            return float(text) if _EPOCH.match(text) else None
        elif fmt == "iso":
            return None
        else:
            dt = datetime.strptime(text, fmt)
        return (dt if dt.tzinfo is not None else dt.replace(tzinfo=UTC)).timestamp()
    except (ValueError, OverflowError):
        return None


class LiveReplay:
    """The real Engine with a MemoryStore sized as the policy says, driven by log time."""

    def __init__(self, policy: CompiledPolicy) -> None:
        state = policy.source.state
        self.clock = ManualClock(0.0)
        self.engine = Engine(
            policy, MemoryStore(idle_ttl=state.idle_ttl, max_keys=state.max_clients), self.clock
        )

    def decide_lines(self, lines: list[LogLine]) -> pl.DataFrame:
        """Lines in the engine's order (sorted by time) → one row per line with its decision."""
        build = self.engine.contexts.build
        decide = self.engine.decide
        rows = []
        for seq, item in enumerate(lines):
            self.clock.set(item.ts)
            headers = log_headers(item.ua, item.referer)
            if _HAS_QUERY:
                ctx = build(item.ts, item.ip, item.method, item.path, headers, query=item.query)
            else:
                ctx = build(item.ts, item.ip, item.method, item.path, headers)
            d = decide(ctx)
            rows.append(
                (
                    seq,
                    item.file,
                    item.line,
                    item.ts,
                    ctx.ip,
                    ctx.network,
                    ctx.method,
                    item.path,
                    ctx.route,
                    ctx.record,
                    item.status,
                    item.ua,
                    ctx.fingerprint,
                    d.action.value,
                    d.rule,
                    d.score,
                    _limits(d.reasons),
                )
            )
        return pl.DataFrame(rows, schema=LIVE_SCHEMA, orient="row")


LIVE_SCHEMA = {
    "seq": pl.UInt32,
    "file": pl.UInt16,
    "line": pl.Int64,
    "ts": pl.Float64,
    "client": pl.String,
    "network": pl.String,
    "method": pl.String,
    "path": pl.String,
    "route": pl.String,
    "record": pl.String,
    "status": pl.Int32,
    "ua": pl.String,
    "fp": pl.String,
    "action": pl.String,
    "rule": pl.String,
    "score": pl.Float64,
    "limits": pl.String,
}


def _limits(reasons: tuple[str, ...]) -> str:
    """The limits a decision says were breached ("limit NAME: …" reasons), sorted, comma-joined."""
    return ",".join(sorted(r[6 : r.index(":")] for r in reasons if r.startswith("limit ") and ":" in r))


def parse_text_lines(
    texts: list[tuple[int, int, str]], fmt: LogFormat, names: list[str], problems: Problems
) -> list[LogLine]:
    """(file index, line number, text) → good lines; bad ones are reported by number."""
    parser = LineParser(fmt)
    good: list[LogLine] = []
    for file, number, text in texts:
        parsed = parser.parse(text, file, number)
        if isinstance(parsed, str):
            if text.strip():
                problems.bad_lines += 1
                if problems.bad_lines <= MAX_REPORTED:
                    problems.append(Problem(names[file], number, parsed))
        else:
            good.append(parsed)
    return good


def _dash(value: object) -> str:
    text = "" if value is None else str(value)
    return "" if text == "-" else text
