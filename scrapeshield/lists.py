"""Block and allow entries set by analysts, each with an expiry (in memory; persisted by db)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from scrapeshield.types import Action, RequestContext

KINDS = ("ip", "network", "account", "fingerprint")


@dataclass(frozen=True, slots=True)
class ListEntry:
    kind: str  # one of KINDS
    value: str  # an IP, a CIDR, an account id or a fingerprint
    action: Action  # ALLOW or BLOCK (or CHALLENGE)
    expires: float  # epoch seconds; 0 = never
    reason: str
    created_by: str = ""


def normalise(kind: str, value: str) -> str:
    """Canonical form of an entry's value; raises ValueError for an invalid one."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}")
    value = value.strip()
    if not value or len(value) > 200:
        raise ValueError("value must be 1..200 characters")
    if kind == "ip":
        return str(ipaddress.ip_address(value))
    if kind == "network":
        return str(ipaddress.ip_network(value, strict=False))
    return value


class Lists:
    def __init__(self) -> None:
        self._exact: dict[tuple[str, str], ListEntry] = {}
        self._networks: list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ListEntry]] = []

    def __len__(self) -> int:
        return len(self._exact) + len(self._networks)

    def entries(self) -> list[ListEntry]:
        return [*self._exact.values(), *(e for _, e in self._networks)]

    def add(self, entry: ListEntry) -> None:
        self.remove(entry.kind, entry.value)
        if entry.kind == "network":
            self._networks.append((ipaddress.ip_network(entry.value, strict=False), entry))
        else:
            self._exact[(entry.kind, entry.value)] = entry

    def remove(self, kind: str, value: str) -> bool:
        if kind == "network":
            before = len(self._networks)
            self._networks = [(n, e) for n, e in self._networks if e.value != value]
            return len(self._networks) != before
        return self._exact.pop((kind, value), None) is not None

    def match(self, ctx: RequestContext) -> ListEntry | None:
        """The entry that applies to this request (allow wins over block), if any."""
        if not self._exact and not self._networks:
            return None
        found: list[ListEntry] = []
        for key in (("ip", ctx.ip), ("account", ctx.account), ("fingerprint", ctx.fingerprint)):
            entry = self._exact.get(key)
            if entry is not None:
                found.append(entry)
        if self._networks:
            addr = ipaddress.ip_address(ctx.ip)
            found += [e for n, e in self._networks if addr.version == n.version and addr in n]
        live = [e for e in found if not e.expires or e.expires > ctx.ts]
        if not live:
            return None
        return next((e for e in live if e.action is Action.ALLOW), live[0])
