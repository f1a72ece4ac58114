"""Is this search-engine user-agent really that search engine?

A claim is verified when the address is in the crawler's published ranges (where we ship
them) AND forward-confirmed reverse DNS agrees: the address's PTR name ends in the
crawler's domain and that name resolves back to the address. DNS never runs on the
request path: a miss starts a lookup on a small thread pool and the request is
treated as unverified meanwhile; answers are cached (verified for a day, failures for an
hour). An address outside the published ranges of a crawler that publishes them is
spoofed at once, without DNS. Without a resolver (simulation, air-gapped hosts) the
published ranges alone decide, and crawlers that publish none stay unverified.
"""

from __future__ import annotations

import enum
import logging
import re
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from scrapeshield.goodbots.ranges import RangeSet, load

log = logging.getLogger("scrapeshield.goodbots")

VERIFIED_TTL = 86400.0
FAILED_TTL = 3600.0
MAX_CACHE = 100_000


class Status(enum.Enum):
    VERIFIED = "verified"
    SPOOFED = "spoofed"
    PENDING = "pending"  # not known yet (or no way to know): unverified


@dataclass(frozen=True, slots=True)
class Bot:
    name: str
    user_agent: re.Pattern[str]
    ranges: tuple[str, ...]  # shipped list stems; () when the crawler publishes none we ship
    domains: tuple[str, ...]  # reverse-DNS suffixes


BOTS: tuple[Bot, ...] = (
    Bot("googlebot", re.compile(r"Googlebot|Google-InspectionTool|GoogleOther|Storebot-Google|"
                                r"AdsBot-Google|Mediapartners-Google|APIs-Google|FeedFetcher-Google"),
        ("googlebot", "googlesc", "googleutf", "user-triggered-fetchers"),
        ("googlebot.com", "google.com", "googleusercontent.com")),
    Bot("bingbot", re.compile(r"bingbot|BingPreview|msnbot|adidxbot"), ("bingbot",),
        ("search.msn.com",)),
    Bot("applebot", re.compile(r"Applebot"), ("applebot",), ("applebot.apple.com",)),
    Bot("yandexbot", re.compile(r"YandexBot|YandexImages"), (), ("yandex.ru", "yandex.net", "yandex.com")),
    Bot("baiduspider", re.compile(r"Baiduspider"), (), ("baidu.com", "baidu.jp")),
    Bot("duckduckbot", re.compile(r"DuckDuckBot"), ("duckduckbot",), ()),
)


class Resolver(Protocol):
    """DNS for verification; tests pass one that serves fixed answers."""

    def reverse(self, ip: str) -> list[str]:
        """PTR names of an address ([] when none)."""
        ...

    def forward(self, name: str) -> list[str]:
        """Addresses a name resolves to ([] when none)."""
        ...


class SystemResolver:
    """The host's resolver (blocking: called only from the verification pool)."""

    def reverse(self, ip: str) -> list[str]:
        try:
            name, aliases, _ = socket.gethostbyaddr(ip)
        except OSError:
            return []
        return [name, *aliases]

    def forward(self, name: str) -> list[str]:
        try:
            infos = socket.getaddrinfo(name, None)
        except OSError:
            return []
        return sorted({str(info[4][0]) for info in infos})


class GoodBots:
    """Verification with a cache; ``status`` never blocks."""

    def __init__(
        self, resolver: Resolver | None = None, ranges_dir: Path | None = None, workers: int = 2,
        inline: bool = False,
    ) -> None:
        """``inline``: look up DNS in the calling thread (replays and simulations on event time,
        where there is no live request to hold up and answers must not depend on timing)."""
        self.resolver = resolver
        self._inline = inline
        self._ranges: dict[str, RangeSet] = {
            bot.name: load(bot.ranges, ranges_dir) for bot in BOTS if bot.ranges
        }
        self._cache: dict[tuple[str, str], tuple[Status, float]] = {}
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        live = resolver is not None and not inline
        self._pool = ThreadPoolExecutor(workers, "scrapeshield-dns") if live else None
        self.lookups = 0

    def bot_for(self, user_agent: str) -> Bot | None:
        for bot in BOTS:
            if bot.user_agent.search(user_agent) is not None:
                return bot
        return None

    def status(self, ip: str, bot: Bot, now: float) -> Status:
        key = (ip, bot.name)
        hit = self._cache.get(key)
        if hit is not None and hit[1] > now:
            return hit[0]
        ranges = self._ranges.get(bot.name)
        published = ranges is not None and len(ranges) > 0
        if published and ip not in ranges:  # type: ignore[operator]
            return self._remember(key, Status.SPOOFED, now + FAILED_TTL)
        if self._inline and self.resolver is not None and bot.domains:
            verified = self._fcrdns(ip, bot)
            return self._remember(key, Status.VERIFIED if verified else Status.SPOOFED,
                                  now + (VERIFIED_TTL if verified else FAILED_TTL))
        if self._pool is None or not bot.domains:
            return self._remember(key, Status.VERIFIED if published else Status.PENDING,
                                  now + (VERIFIED_TTL if published else FAILED_TTL))
        with self._lock:
            if key in self._pending:
                return Status.PENDING
            self._pending.add(key)
        self._pool.submit(self._confirm, key, bot, now)
        return Status.PENDING

    def wait(self) -> None:
        """Let every verification started so far finish (tests and shutdown)."""
        for _ in range(1000):
            if self._pool is None or not self._pending:
                return
            self._pool.submit(lambda: None).result()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    def _confirm(self, key: tuple[str, str], bot: Bot, now: float) -> None:
        ip = key[0]
        try:
            self.lookups += 1
            verified = self._fcrdns(ip, bot)
        except Exception:  # a resolver's own failure: unverified, try again later
            log.warning("reverse DNS check of %s for %s failed", ip, bot.name, exc_info=True)
            verified = False
        status = Status.VERIFIED if verified else Status.SPOOFED
        self._remember(key, status, now + (VERIFIED_TTL if verified else FAILED_TTL))
        with self._lock:
            self._pending.discard(key)

    def _fcrdns(self, ip: str, bot: Bot) -> bool:
        assert self.resolver is not None
        for name in self.resolver.reverse(ip):
            host = name.rstrip(".").lower()
            if any(host == d or host.endswith("." + d) for d in bot.domains):
                if ip in self.resolver.forward(host):
                    return True
        return False

    def _remember(self, key: tuple[str, str], status: Status, until: float) -> Status:
        if len(self._cache) >= MAX_CACHE:
            self._cache.clear()
        self._cache[key] = (status, until)
        return status
