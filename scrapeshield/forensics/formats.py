"""Log formats: how a line becomes the fields the engine needs.

A format is a regular expression with named groups (``ip``, ``time``, ``method``, ``target``,
``status``, ``referer``, ``ua``) and the way its time is written, or JSON lines with a map
of keys. Both the batch parser (polars, Rust regex) and the line-at-a-time parser (Python
``re``) read the same definition; the patterns stay in the syntax both engines share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from scrapeshield.errors import ScrapeshieldError

COMBINED_TIME = "%d/%b/%Y:%H:%M:%S %z"
# Times both parsers accept, written out so that they accept the same ones: ISO 8601 with
# seconds, up to microseconds, an offset or Z (none: UTC); epoch seconds.
ISO_TIME = (
    r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?$"
)
EPOCH_TIME = r"^[0-9]{1,12}(?:\.[0-9]{1,6})?$"
_QUOTED = r'(?:[^"\\]|\\.)*'
# A run of non-space characters, as Python's re reads \S: Rust's \s (polars) leaves out the
# separators \x1c-\x1f, which Python's counts as space; this class means the same to both.
_TOKEN = r"[^\s\x1c-\x1f]+"
# nginx and Apache "combined" (and "common", whose referer and user-agent are absent). The
# status is ASCII digits ([0-9]): the engines' Unicode \d tables differ by a hundred digits.
COMBINED = (
    rf"^(?P<ip>{_TOKEN}) {_TOKEN} {_TOKEN} \[(?P<time>[^\]]+)\] "
    rf'"(?P<method>[A-Za-z]+) (?P<target>[^ "]+)(?: [^"]*)?" (?P<status>[0-9]{{3}}) {_TOKEN}'
    rf'(?: "(?P<referer>{_QUOTED})" "(?P<ua>{_QUOTED})")?'
)
FIELDS = ("ip", "time", "method", "target", "status", "referer", "ua")
REQUIRED = ("ip", "time", "target")
# JSON lines: each field may come from the first of several keys (nginx json, Caddy, ALB…).
JSON_KEYS: dict[str, tuple[str, ...]] = {
    "ip": ("remote_addr", "client_ip", "ip", "client"),
    "time": ("time", "timestamp", "@timestamp", "ts", "time_iso8601", "time_local"),
    "method": ("method", "request_method"),
    "target": ("uri", "request_uri", "path", "url"),
    "request": ("request",),
    "status": ("status", "status_code"),
    "referer": ("http_referer", "referer", "referrer"),
    "ua": ("http_user_agent", "user_agent", "ua", "agent"),
}
# nginx log_format variables → field (others match one token, or one quoted string).
_NGINX_VARS = {
    "remote_addr": "ip",
    "binary_remote_addr": "ip",
    "time_local": "time",
    "time_iso8601": "time",
    "msec": "time",
    "request_method": "method",
    "request_uri": "target",
    "uri": "target",
    "status": "status",
    "http_referer": "referer",
    "http_user_agent": "ua",
}
_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


class FormatError(ScrapeshieldError):
    """A log format option that cannot be used (the message says why)."""


@dataclass(frozen=True)
class LogFormat:
    """One way of writing access logs."""

    name: str
    kind: str  # "regex" | "json"
    pattern: str = ""
    time_format: str = COMBINED_TIME  # strftime, or "iso" / "epoch"
    json_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern)


def combined() -> LogFormat:
    return LogFormat("combined", "regex", COMBINED, COMBINED_TIME)


def json_lines(overrides: dict[str, str] | None = None) -> LogFormat:
    keys = dict(JSON_KEYS)
    for name, key in (overrides or {}).items():
        if name not in JSON_KEYS:
            raise FormatError(f"unknown JSON field {name!r}: expected one of {', '.join(JSON_KEYS)}")
        keys[name] = (key,)
    return LogFormat("json", "json", time_format="auto", json_keys=keys)


def from_regex(pattern: str, time_format: str) -> LogFormat:
    """A custom format from a regex with named groups (``ip``, ``time`` and ``target`` needed)."""
    try:
        compiled = re.compile(pattern)
    except re.error as exc:
        raise FormatError(f"the format's regular expression does not compile: {exc}") from None
    names = set(compiled.groupindex)
    missing = [n for n in REQUIRED if n not in names]
    if missing:
        raise FormatError(f"the format's regular expression lacks the group(s) {', '.join(missing)}")
    unknown = sorted(names - set(FIELDS))
    if unknown:
        raise FormatError(f"unknown group(s) {', '.join(unknown)} in the format: use {', '.join(FIELDS)}")
    return LogFormat("regex", "regex", pattern if pattern.startswith("^") else "^" + pattern, time_format)


def from_nginx(log_format: str) -> LogFormat:
    """A custom format written as nginx's ``log_format`` (``$remote_addr - [$time_local] …``)."""
    out = "^"
    last = 0
    seen: set[str] = set()
    time_format = COMBINED_TIME
    for m in _VAR.finditer(log_format):
        literal = log_format[last : m.start()]
        out += re.escape(literal).replace("\\ ", " ")
        var = m.group(1) or m.group(2)
        quoted = literal.endswith('"')
        name = _NGINX_VARS.get(var)
        if var == "request":
            out += '(?P<method>[A-Za-z]+) (?P<target>[^ "]+)(?: [^"]*)?' if quoted else _TOKEN
            seen |= {"method", "target"}
        elif name is not None and name not in seen:
            seen.add(name)
            body = _QUOTED if quoted else (r"[^\]]+" if literal.endswith("[") else _TOKEN)
            out += f"(?P<{name}>{body})"
            if var == "time_iso8601":
                time_format = "iso"
            elif var == "msec":
                time_format = "epoch"
        else:
            out += _QUOTED if quoted else _TOKEN
        last = m.end()
    out += re.escape(log_format[last:]).replace("\\ ", " ")
    return from_regex(out, time_format)


def resolve(
    spec: str, time_format: str | None = None, json_fields: dict[str, str] | None = None
) -> LogFormat:
    """``combined`` | ``json`` | ``regex:PATTERN`` | ``nginx:LOG_FORMAT`` → a LogFormat."""
    if spec in ("combined", "common", "nginx", "apache"):
        return combined()
    if spec in ("json", "jsonl", "ndjson"):
        return json_lines(json_fields)
    if spec.startswith("regex:"):
        return from_regex(spec[6:], time_format or COMBINED_TIME)
    if spec.startswith("nginx:"):
        fmt = from_nginx(spec[6:])
        return fmt if time_format is None else LogFormat(fmt.name, fmt.kind, fmt.pattern, time_format)
    raise FormatError(f"unknown log format {spec!r}: use combined, json, regex:PATTERN or nginx:LOG_FORMAT")
