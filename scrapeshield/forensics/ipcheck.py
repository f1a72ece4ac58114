"""Which client addresses in a log are real IP addresses (checked once per distinct value)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text[:64].strip("[]"))
    except ValueError:
        return False
    return True


def valid_ips(values: Iterable[str]) -> set[str]:
    return {v for v in values if valid_ip(v)}
