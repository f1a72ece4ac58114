"""What real clients send: header names in their real order, values, and TLS (JA4).

Orders are as an origin behind a TLS-terminating edge sees them (the edge puts ``host``
first, drops hop-by-hop headers and appends ``x-forwarded-for`` and the JA4 header); the
library orders and values were captured from the tools installed here (Scrapy 2.19,
httpx 0.28, requests 2.34, curl_cffi 0.17 as Chrome 152, Debian's Chromium 156), and
tests/test_simulate_tools.py compares them with what those tools send. JA4 strings are
representative values of each TLS stack (JA4 sorts ciphers and extensions, so a
browser's JA4 is stable across connections; curl_cffi reproduces Chrome's exactly).
"""

from __future__ import annotations

from dataclasses import dataclass

Headers = list[tuple[str, str]]

JA4_CHROME = "t13d1516h2_8daaf6152771_02713d6af862"
JA4_FIREFOX = "t13d1715h2_5b57614c22b0_3d5424432f57"
JA4_SAFARI = "t13d2014h2_a09f3c656075_14788d8d241b"
JA4_PYTHON = "t13d1812h1_85036bcba153_b26ce05bbdd6"  # OpenSSL via urllib3/httpx/Twisted
JA4_OKHTTP = "t13d1613h2_46e7e9700bed_eca864cca44a"
JA4_GOOGLEBOT = "t13d1515h2_8daaf6152771_de4a06bb82e3"

NAV_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
              "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
FF_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
ASSET_ACCEPT = {
    "style": "text/css,*/*;q=0.1",
    "script": "*/*",
    "image": "image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8",
}


FF_ASSET_ACCEPT = {"image": "image/avif,image/webp,image/png,image/svg+xml,image/*;q=0.8,*/*;q=0.5"}
FF_PRIORITY = {"style": "u=2", "script": "u=2", "image": "u=5, i"}


@dataclass(frozen=True, slots=True)
class Tool:
    """One client program: how it builds a page request and (for browsers) a sub-resource."""

    name: str
    user_agent: str
    ja4: str
    kind: str  # chrome | firefox | safari | library | app | crawler
    language: str = "en-US,en;q=0.9"
    platform: str = '"Windows"'
    brands: str = ""
    mobile: bool = False
    nav_accept: str = NAV_ACCEPT

    def page(self, host: str, *, referer: str = "", cookie: str = "", site: str = "same-origin",
             accept: str = "") -> Headers:
        if self.kind == "chrome":
            return _chrome_nav(self, host, referer, cookie, site)
        if self.kind == "firefox":
            return _firefox_nav(self, host, referer, cookie, site)
        if self.kind == "safari":
            return _safari_nav(self, host, referer, cookie, site)
        return _plain(self, host, referer, cookie, accept)

    def asset(self, host: str, dest: str, referer: str, cookie: str = "") -> Headers:
        accept = ASSET_ACCEPT.get(dest, "*/*")
        mode = "cors" if dest == "fetch" else "no-cors"
        if self.kind == "chrome":  # sub-resources: platform hint first, then UA, then brands
            if dest == "image" and "image/jxl" in self.nav_accept:
                accept = "image/jxl," + accept
            hints = dict(_client_hints(self))
            h = [("host", host), ("connection", "keep-alive")]
            if hints:
                h.append(("sec-ch-ua-platform", hints["sec-ch-ua-platform"]))
            h.append(("user-agent", self.user_agent))
            if hints:
                h += [("sec-ch-ua", hints["sec-ch-ua"]), ("sec-ch-ua-mobile", hints["sec-ch-ua-mobile"])]
            h += [("accept", accept), ("sec-fetch-site", "same-origin"),
                  ("sec-fetch-mode", mode), ("sec-fetch-dest", dest), ("referer", referer),
                  ("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", self.language)]
            if cookie:
                h.append(("cookie", cookie))
            return h
        if self.kind == "firefox":
            accept = FF_ASSET_ACCEPT.get(dest, accept)
            h = [("host", host), ("user-agent", self.user_agent), ("accept", accept),
                 ("accept-language", self.language), ("accept-encoding", "gzip, deflate, br, zstd"),
                 ("connection", "keep-alive"), ("referer", referer)]
            if cookie:
                h.append(("cookie", cookie))
            return h + [("sec-fetch-dest", dest), ("sec-fetch-mode", mode),
                        ("sec-fetch-site", "same-origin"), ("priority", FF_PRIORITY.get(dest, "u=4"))]
        h = [("host", host), ("accept", accept), ("sec-fetch-site", "same-origin")]
        if cookie:
            h.append(("cookie", cookie))
        return h + [("sec-fetch-dest", dest), ("accept-language", self.language),
                    ("sec-fetch-mode", mode), ("user-agent", self.user_agent), ("referer", referer),
                    ("accept-encoding", "gzip, deflate, br")]


def _client_hints(tool: Tool) -> Headers:
    if not tool.brands:
        return []
    return [("sec-ch-ua", tool.brands), ("sec-ch-ua-mobile", "?1" if tool.mobile else "?0"),
            ("sec-ch-ua-platform", tool.platform)]


def _chrome_nav(tool: Tool, host: str, referer: str, cookie: str, site: str) -> Headers:
    h = [("host", host), ("connection", "keep-alive")]
    h += _client_hints(tool)
    h += [("upgrade-insecure-requests", "1"), ("user-agent", tool.user_agent), ("accept", tool.nav_accept),
          ("sec-fetch-site", site), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
          ("sec-fetch-dest", "document")]
    if referer:
        h.append(("referer", referer))
    h += [("accept-encoding", "gzip, deflate, br, zstd"), ("accept-language", tool.language)]
    if cookie:
        h.append(("cookie", cookie))
    return h + [("priority", "u=0, i")]


def _firefox_nav(tool: Tool, host: str, referer: str, cookie: str, site: str) -> Headers:
    h = [("host", host), ("user-agent", tool.user_agent), ("accept", FF_ACCEPT),
         ("accept-language", tool.language), ("accept-encoding", "gzip, deflate, br, zstd")]
    if referer:
        h.append(("referer", referer))
    h.append(("connection", "keep-alive"))
    if cookie:
        h.append(("cookie", cookie))
    return h + [("upgrade-insecure-requests", "1"), ("sec-fetch-dest", "document"),
                ("sec-fetch-mode", "navigate"), ("sec-fetch-site", site), ("sec-fetch-user", "?1"),
                ("priority", "u=0, i")]


def _safari_nav(tool: Tool, host: str, referer: str, cookie: str, site: str) -> Headers:
    h = [("host", host), ("accept", FF_ACCEPT), ("sec-fetch-site", site)]
    if cookie:
        h.append(("cookie", cookie))
    h += [("sec-fetch-dest", "document"), ("accept-language", tool.language),
          ("sec-fetch-mode", "navigate"), ("user-agent", tool.user_agent)]
    if referer:
        h.append(("referer", referer))
    return h + [("accept-encoding", "gzip, deflate, br"), ("priority", "u=0, i")]


def _plain(tool: Tool, host: str, referer: str, cookie: str, accept: str) -> Headers:
    """Libraries, crawlers and the app: each its own fixed set and order."""
    name = tool.name
    if name == "scrapy":  # Twisted writes Host last
        h = [("accept", accept or FF_ACCEPT), ("accept-language", "en"),
             ("user-agent", tool.user_agent), ("accept-encoding", "gzip, deflate, br, zstd")]
        if referer:
            h.append(("referer", referer))
        h.append(("host", host))
    elif name == "python-requests":
        h = [("host", host), ("user-agent", tool.user_agent), ("accept-encoding", "gzip, deflate, br, zstd"),
             ("accept", accept or "*/*"), ("connection", "keep-alive")]
    elif name == "httpx":
        h = [("host", host), ("accept", accept or "*/*"), ("accept-encoding", "gzip, deflate, br"),
             ("connection", "keep-alive"), ("user-agent", tool.user_agent)]
    elif name in ("curl-cffi-chrome", "curl-cffi-chrome-api"):
        # curl_cffi impersonate="chrome" (Chrome 152): Chrome's navigation set with
        # Sec-Fetch-Site none (no referer ever) and Cache-Control max-age=0; curl adds Host.
        h = [("host", host), ("sec-ch-ua", tool.brands), ("sec-ch-ua-mobile", "?0"),
             ("sec-ch-ua-platform", tool.platform), ("upgrade-insecure-requests", "1"),
             ("user-agent", tool.user_agent), ("accept", accept or NAV_ACCEPT),
             ("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate"), ("sec-fetch-user", "?1"),
             ("sec-fetch-dest", "document"), ("accept-encoding", "gzip, deflate, br, zstd"),
             ("accept-language", tool.language), ("cache-control", "max-age=0")]
    elif tool.kind == "app":
        h = [("host", host), ("accept", "application/json"), ("accept-language", tool.language),
             ("x-app-version", "5.12.0"), ("user-agent", tool.user_agent),
             ("accept-encoding", "gzip")]
    elif tool.kind == "crawler":
        h = [("host", host), ("connection", "keep-alive"),
             ("accept", "text/html,application/xhtml+xml,application/signed-exchange;v=b3,"
                        "application/xml;q=0.9,*/*;q=0.8"),
             ("from", "googlebot(at)googlebot.com" if "Google" in tool.user_agent else
              "bingbot(at)microsoft.com"),
             ("user-agent", tool.user_agent), ("accept-encoding", "gzip, deflate, br")]
    else:
        h = [("host", host), ("user-agent", tool.user_agent), ("accept", accept or "*/*")]
    if cookie:
        h.append(("cookie", cookie))
    return h
