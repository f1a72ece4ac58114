"""The framework spider for live mode: a stock Scrapy spider in its own process.

``python -m scrapeshield.simulate.live_scrapy BASE_URL OUT.jsonl SOURCE_ADDRESS MAX_PAGES``
crawls with Scrapy's defaults (robots.txt obeyed, its own user-agent and headers),
from SOURCE_ADDRESS, following profile and follower links from the feed, and writes
one JSON line per response: url, status, body (profile pages only) and action header.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from typing import Any


def main(argv: list[str]) -> None:
    import scrapy
    from scrapy.crawler import CrawlerProcess

    base, out_path, source, max_pages = argv[0], argv[1], argv[2], int(argv[3])
    out = open(out_path, "w", encoding="utf-8")  # noqa: SIM115 - closed when the crawl ends

    class ProfileSpider(scrapy.Spider):
        name = "profiles"
        start_urls = [base + "/"]
        custom_settings = {
            "ROBOTSTXT_OBEY": True,  # as `scrapy startproject` generates it
            "CLOSESPIDER_PAGECOUNT": max_pages,
            "HTTPERROR_ALLOW_ALL": True,
            "LOG_LEVEL": "WARNING",
            "TELNETCONSOLE_ENABLED": False,
            "REQUEST_FINGERPRINTER_IMPLEMENTATION": "2.7",
        }

        def start_requests(self) -> Iterator[Any]:
            for url in self.start_urls:
                yield scrapy.Request(url, meta={"bindaddress": (source, 0)})

        def parse(self, response: Any) -> Iterator[Any]:
            action = response.headers.get(b"X-Scrapeshield-Action", b"").decode()
            profile = "/u/" in response.url and "/followers" not in response.url
            out.write(json.dumps({"url": response.url, "status": response.status, "action": action,
                                  "body": response.text if profile else ""}) + "\n")
            if response.status != 200:
                return
            for href in response.css("a::attr(href)").getall():
                if href.startswith("/u/"):
                    yield response.follow(href, meta={"bindaddress": (source, 0)})

    process = CrawlerProcess(settings={"LOG_LEVEL": "WARNING"})
    process.crawl(ProfileSpider)
    process.start()
    out.close()


if __name__ == "__main__":
    main(sys.argv[1:])
