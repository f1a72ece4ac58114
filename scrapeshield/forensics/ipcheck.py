"""Client addresses in a log: which are real IP addresses, checked once per distinct value.

Canonical dotted-quad IPv4 (the common case) is recognised column-wise by a pattern;
anything else goes through ``ipaddress`` once and is remembered.
"""

from __future__ import annotations

import ipaddress

import polars as pl

_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9][0-9]|[0-9])"
# The form ContextBuilder keeps as is (no leading zeros): its /24 is the first three octets.
CANONICAL_V4 = rf"^{_OCTET}\.{_OCTET}\.{_OCTET}\.{_OCTET}$"


def valid_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text[:64].strip("[]"))
    except ValueError:
        return False
    return True


class AddressCheck:
    """Remembers the verdict on every non-IPv4-canonical address seen (bounded)."""

    def __init__(self, limit: int = 1_000_000) -> None:
        self._known: dict[str, bool] = {}
        self._limit = limit

    def valid(self, ips: pl.Series) -> pl.Series:
        """A boolean per address (null addresses are not valid)."""
        quick = ips.str.contains(CANONICAL_V4).fill_null(False)
        others = ips.filter(~quick & ips.is_not_null()).unique().to_list()
        fresh = [ip for ip in others if ip not in self._known]
        if len(self._known) + len(fresh) > self._limit:
            self._known.clear()
        for ip in fresh:
            self._known[ip] = valid_ip(ip)
        good = [ip for ip in others if self._known.get(ip, False)]
        return quick | ips.is_in(pl.Series(good, dtype=pl.String).implode())
