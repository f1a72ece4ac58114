"""Published IP ranges: every provider's JSON shape normalised to sorted integer intervals.

Providers publish in their own shapes (``{"prefixes": [{"ipv4Prefix": …}]}``, ``{"IPv4Prefixes":
[…]}``, bare lists, nested objects). The loader walks any JSON and keeps every string that is an
address or a network (keys naming a netmask are skipped: a mask parses as an address). Lookups
are a binary search over merged intervals, so a million lookups cost no more than a few.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import json
from collections.abc import Iterable, Iterator
from importlib.resources import files
from pathlib import Path
from typing import Any

from scrapeshield.context import ipv4_number

SHIPPED = files("scrapeshield") / "data" / "ip-ranges"
_MAX_DEPTH = 12


def networks_in(data: Any) -> Iterator[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    """Every address or network named anywhere in a parsed JSON document."""
    for text in _strings(data):
        try:
            yield ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue


def _strings(data: Any) -> Iterator[str]:
    """Strings that may name an address, anywhere in a document (not under mask keys)."""
    stack: list[tuple[Any, str, int]] = [(data, "", 0)]
    while stack:
        node, key, depth = stack.pop()
        if depth > _MAX_DEPTH:
            continue
        if isinstance(node, dict):
            stack += [(v, str(k).lower(), depth + 1) for k, v in node.items()]
        elif isinstance(node, list):
            stack += [(v, key, depth + 1) for v in node]
        elif isinstance(node, str) and "mask" not in key and ("." in node or ":" in node):
            yield node.strip()


def _span(text: str) -> tuple[int, int, int] | None:
    """(version, first, last) of a dotted IPv4 network without building ipaddress objects
    (the cloud lists hold tens of thousands); None for anything else."""
    address, _, bits = text.partition("/")
    parts = address.split(".")
    if not text.isascii() or len(parts) != 4 or not all(p.isdigit() and int(p) < 256 for p in parts):
        return None
    width = int(bits) if bits.isdigit() and int(bits) <= 32 else (32 if not bits else -1)
    if width < 0:
        return None
    a, b, c, d = (int(p) for p in parts)
    low = ((a << 24) | (b << 16) | (c << 8) | d) & ~((1 << (32 - width)) - 1) & 0xFFFFFFFF
    return 4, low, low | ((1 << (32 - width)) - 1)


def spans_in(data: Any) -> Iterator[tuple[int, int, int]]:
    """(version, first, last) of every network in a parsed JSON document."""
    for text in _strings(data):
        fast = _span(text)
        if fast is not None:
            yield fast
            continue
        try:
            net = ipaddress.ip_network(text, strict=False)
        except ValueError:
            continue
        yield net.version, int(net.network_address), int(net.broadcast_address)


class RangeSet:
    """Merged address intervals of one or more lists (IPv4 and IPv6 kept apart)."""

    def __init__(self, spans_of: Iterable[tuple[int, int, int]]) -> None:
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for version, low, high in spans_of:
            spans[version].append((low, high))
        self._starts: dict[int, list[int]] = {}
        self._ends: dict[int, list[int]] = {}
        for version, items in spans.items():
            merged: list[tuple[int, int]] = []
            for low, high in sorted(items):
                if merged and low <= merged[-1][1] + 1:
                    merged[-1] = (merged[-1][0], max(merged[-1][1], high))
                else:
                    merged.append((low, high))
            self._starts[version] = [low for low, _ in merged]
            self._ends[version] = [high for _, high in merged]

    def __len__(self) -> int:
        return len(self._starts[4]) + len(self._starts[6])

    def __contains__(self, ip: object) -> bool:
        number = _ipv4_number(ip) if isinstance(ip, str) else -1
        if number >= 0:  # the common case, without building an address object
            i = bisect.bisect_right(self._starts[4], number) - 1
            return i >= 0 and number <= self._ends[4][i]
        try:
            addr = ipaddress.ip_address(str(ip))
        except ValueError:
            return False
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        number = int(addr)
        starts = self._starts[addr.version]
        i = bisect.bisect_right(starts, number) - 1
        return i >= 0 and number <= self._ends[addr.version][i]


def _ipv4_number(text: str) -> int:
    """A dotted-quad IPv4 address as ``ipaddress`` reads it (-1: anything else, for it to judge):
    1-3 ASCII digits, no leading zero, at most 255 (the context's parser, on machine integers)."""
    return ipv4_number(text)


@functools.lru_cache(maxsize=32)
def load(names: tuple[str, ...], override: Path | None = None) -> RangeSet:
    """The lists ``names`` (file stems), from ``override`` when a refreshed copy is there.

    Cached per process: engines come and go (reloads, tests), the lists stay the same until
    a refresh (which calls ``load.cache_clear()``)."""
    found: list[tuple[int, int, int]] = []
    for name in names:
        text = _read(f"{name}.json", override)
        if text is None:
            continue
        try:
            found.extend(spans_in(json.loads(text)))
        except ValueError:
            continue  # a damaged refreshed file: the others still count
    return RangeSet(found)


def _read(filename: str, override: Path | None) -> str | None:
    if override is not None and (override / filename).is_file():
        return (override / filename).read_text("utf-8")
    shipped = SHIPPED / filename
    return shipped.read_text("utf-8") if shipped.is_file() else None
