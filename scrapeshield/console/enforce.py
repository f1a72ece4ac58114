"""Block, allow or challenge from the console: a list entry in the running engine (effective
on the next request) and in the database (kept across restarts), audited by the caller.

The console shows clients and networks by pseudonym; the address behind one is looked up in
the monitor's recent memory on this node, never stored by the console.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scrapeshield.lists import ListEntry, normalise
from scrapeshield.types import Action

if TYPE_CHECKING:
    from scrapeshield.console.monitor import Monitor
    from scrapeshield.runtime import Shield

ACTIONS = ("block", "challenge", "allow")
MAX_TTL = 365 * 86400.0
MAX_ENTRIES = 5000  # per campaign action


class EnforceError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    kind: str  # a lists.KINDS kind
    value: str  # what the list matches (an IP or CIDR is resolved, not shown)
    label: str  # what the console shows (the pseudonym for addresses)


def resolve(monitor: Monitor | None, kind: str, value: str) -> Target:
    """A target from what a console form sends: addresses come as pseudonyms (or as plain IPs
    when the policy keeps IPs in clear); accounts and fingerprints as they are."""
    if kind in ("ip", "network"):
        try:
            return Target(kind, normalise(kind, value), value)
        except ValueError:
            address = monitor.address_of(value) if monitor is not None else None
            if address is None:
                raise EnforceError(
                    f"the address behind {value} is not known to this node any more; block its "
                    "fingerprint or account instead") from None
            return Target(kind, normalise(kind, address), value)
    try:
        return Target(kind, normalise(kind, value), value)
    except ValueError as exc:
        raise EnforceError(str(exc)) from None


def check(action: str, ttl: float, reason: str) -> str:
    """The reason, tidied; raises EnforceError for a bad action, expiry or an empty reason."""
    if action not in ACTIONS:
        raise EnforceError(f"action must be one of {', '.join(ACTIONS)}")
    if not 0 <= ttl <= MAX_TTL:
        raise EnforceError("expiry must be between 0 (never) and 365 days")
    reason = " ".join(reason.split())[:500]
    if not reason:
        raise EnforceError("give a reason: it goes into the audit trail and the evidence")
    return reason


def apply(shield: Shield, targets: list[Target], action: str, ttl: float, reason: str,
          actor: str) -> list[ListEntry]:
    reason = check(action, ttl, reason)
    now = shield.clock.now()
    entries = []
    for target in targets[:MAX_ENTRIES]:
        entry = ListEntry(target.kind, target.value, Action(action), now + ttl if ttl else 0.0,
                          reason, actor)
        shield.engine.lists.add(entry)
        shield.db.add_list_entry(entry, now)
        entries.append(entry)
    return entries


def remembered(monitor: Monitor | None, clients: list[str]) -> list[Target]:
    """IP targets for the pseudonymised clients whose address this node still remembers."""
    if monitor is None:
        return []
    targets = []
    for client in clients:
        address = monitor.address_of(client)
        if address is not None and is_address(address):
            targets.append(Target("ip", address, client))
    return targets


def remembered_networks(monitor: Monitor | None, keys: list[str]) -> list[Target]:
    """Network targets for pseudonymised subnets whose CIDR this node still remembers."""
    targets = []
    for key in keys:
        network = monitor.address_of(key) if monitor is not None else None
        if network is not None and "/" in network:
            targets.append(Target("network", normalise("network", network), key))
    return targets


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
