"""A reproducible, realistic request mix for benchmarks: people, the mobile app, scrapers."""

from __future__ import annotations

import random

CHROME_VERSIONS = (124, 125, 126, 127)
LANGS = ("en-GB,en;q=0.9", "en-US,en;q=0.9", "fr-FR,fr;q=0.9,en;q=0.8", "de-DE,de;q=0.9")


def chrome(version: int, lang: str, client: int) -> list[tuple[bytes, bytes]]:
    ua = (
        f"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        f"Chrome/{version}.0.0.0 Safari/537.36"
    )
    return [
        (b"host", b"127.0.0.1:8000"),
        (b"connection", b"keep-alive"),
        (
            b"sec-ch-ua",
            f'"Chromium";v="{version}", "Google Chrome";v="{version}", "Not-A.Brand";v="8"'.encode(),
        ),
        (b"sec-ch-ua-mobile", b"?0"),
        (b"sec-ch-ua-platform", b'"Linux"'),
        (b"user-agent", ua.encode()),
        (b"accept", b"text/html,application/xhtml+xml,*/*;q=0.8"),
        (b"sec-fetch-site", b"same-origin"),
        (b"sec-fetch-mode", b"navigate"),
        (b"sec-fetch-dest", b"document"),
        (b"referer", b"http://127.0.0.1:8000/"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
        (b"accept-language", lang.encode()),
        (b"cookie", f"sid={client}.session{client}".encode()),
    ]


SCRAPER = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"python-httpx/0.28.1"),
    (b"accept", b"*/*"),
    (b"accept-encoding", b"gzip, deflate"),
    (b"connection", b"keep-alive"),
]
APP = [
    (b"host", b"127.0.0.1:8000"),
    (b"user-agent", b"SocialApp/5.2 (Android 14)"),
    (b"authorization", b"Bearer app-token"),
    (b"accept-language", b"en"),
    (b"accept", b"application/json"),
]


def scopes(count: int, clients: int = 100_000, seed: int = 1) -> list[dict[str, object]]:
    """ASGI scopes: 85 % people browsing, 5 % the mobile app, 10 % scrapers enumerating ids."""
    rng = random.Random(seed)
    out: list[dict[str, object]] = []
    cursor: dict[int, int] = {}
    for _ in range(count):
        client = rng.randrange(clients)
        ip = f"10.{client & 255}.{client >> 8 & 255}.{(client >> 16) + 1}"  # one client per /24
        kind = (client % 20) / 20  # who a client is does not change between its requests
        if kind < 0.85:
            headers = (
                chrome(CHROME_VERSIONS[client % 4], LANGS[client % 4], client)
                if client % 3
                else chrome(CHROME_VERSIONS[client % 4], LANGS[client % 4], client)[:-1]
            )
            path = rng.choice(
                (
                    "/",
                    "/static/app.css",
                    "/static/app.js",
                    f"/u/user{rng.randrange(10_000)}",
                    f"/api/v1/users/{rng.randrange(1, 10_000)}",
                    "/search",
                )
            )
        elif kind < 0.90:
            headers = APP
            path = f"/api/v1/users/{rng.randrange(1, 10_000)}"
        else:
            headers = SCRAPER
            cursor[client] = cursor.get(client, rng.randrange(1, 9000)) + 1
            path = f"/api/v1/users/{cursor[client]}"
        out.append(
            {
                "type": "http",
                "method": "GET",
                "path": path,
                "scheme": "http",
                "client": (ip, 40000),
                "headers": headers,
                "query_string": b"",
            }
        )
    return out
