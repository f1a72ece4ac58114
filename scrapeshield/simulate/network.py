"""Where traffic comes from: residential, mobile-carrier, datacenter and crawler addresses.

Residential addresses are drawn from the /8s of large consumer ISPs, a few per /24 as
real neighbourhoods are; a proxy network's pool is the same kind of address (that is
what makes it residential). Deterministic for a seed.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import random

from scrapeshield.goodbots.ranges import SHIPPED, networks_in

# First octets of large consumer ISPs' space (cable, DSL, fibre) across regions.
RESIDENTIAL_8 = (24, 67, 68, 69, 70, 71, 73, 75, 76, 86, 90, 92, 98, 99, 109, 174, 176, 178, 188, 2, 5,
                 31, 37, 79, 81, 82, 84, 87, 88, 93, 95, 101, 110, 112, 114, 115, 121, 124, 175, 177,
                 179, 180, 181, 186, 187, 189, 190, 191, 200, 201)
DATACENTER_16 = ("45.77", "104.131", "159.203", "3.91", "34.118", "51.15", "138.68", "167.99")
CARRIER_NAT_16 = ("172.56", "100.64")  # mobile carrier egress blocks (CGNAT public side)
# Bingbot's published /24s (Microsoft's bingbot.json; not in the shipped snapshot, so the
# simulator's crawlers are verified by reverse DNS alone, as a deployment without it does).
BINGBOT_24 = ("157.55.39", "207.46.13", "40.77.167")


def residential(rng: random.Random, n: int, per_24: int = 3) -> list[str]:
    """``n`` distinct residential addresses, about ``per_24`` sharing each /24."""
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        a = rng.choice(RESIDENTIAL_8)
        prefix = f"{a}.{rng.randrange(1, 255)}.{rng.randrange(0, 256)}"
        for _ in range(min(per_24, n - len(out))):
            ip = f"{prefix}.{rng.randrange(2, 255)}"
            if ip not in seen:
                seen.add(ip)
                out.append(ip)
    return out


def datacenter(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.choice(DATACENTER_16)}.{rng.randrange(0, 256)}.{rng.randrange(2, 255)}"
            for _ in range(n)]


def carrier_nat(rng: random.Random, n: int) -> list[str]:
    return [f"{rng.choice(CARRIER_NAT_16)}.{rng.randrange(0, 256)}.{rng.randrange(2, 255)}"
            for _ in range(n)]


@functools.cache
def googlebot_networks() -> tuple[ipaddress.IPv4Network, ...]:
    """Googlebot's published IPv4 networks, from the shipped list the verifier reads."""
    text = (SHIPPED / "googlebot.json").read_text("utf-8")
    return tuple(n for n in networks_in(json.loads(text)) if isinstance(n, ipaddress.IPv4Network))


def googlebot(rng: random.Random) -> str:
    """An address Googlebot crawls from (one of its published networks)."""
    net = rng.choice(googlebot_networks())
    return str(net[rng.randrange(net.num_addresses)])


def bingbot(rng: random.Random) -> str:
    return f"{rng.choice(BINGBOT_24)}.{rng.randrange(1, 250)}"
