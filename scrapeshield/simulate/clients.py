"""The concrete clients: people's browsers (with their shares), the scraping tools, the
platform's app and the search engines' crawlers. Values captured from the real tools (see
``tools`` and tests/test_simulate_tools.py)."""

from __future__ import annotations

from scrapeshield.simulate.tools import (
    JA4_CHROME,
    JA4_FIREFOX,
    JA4_GOOGLEBOT,
    JA4_OKHTTP,
    JA4_PYTHON,
    JA4_SAFARI,
    Tool,
)


def _chrome(version: int, os_ua: str, platform: str, language: str, mobile: bool = False) -> Tool:
    brands = f'"Chromium";v="{version}", "Not?A_Brand";v="24", "Google Chrome";v="{version}"'
    suffix = " Mobile" if mobile else ""
    ua = (f"Mozilla/5.0 ({os_ua}) AppleWebKit/537.36 (KHTML, like Gecko) "
          f"Chrome/{version}.0.0.0{suffix} Safari/537.36")
    return Tool(f"chrome-{version}", ua, JA4_CHROME, "chrome", language, platform, brands, mobile)


WINDOWS = "Windows NT 10.0; Win64; x64"
MAC = "Macintosh; Intel Mac OS X 10_15_7"
ANDROID = "Linux; Android 10; K"
LANGS = ("en-US,en;q=0.9", "en-GB,en;q=0.9", "de-DE,de;q=0.9,en;q=0.8", "fr-FR,fr;q=0.9,en;q=0.8",
         "es-ES,es;q=0.9", "pt-BR,pt;q=0.9,en;q=0.8", "ja,en-US;q=0.9,en;q=0.8", "en-IN,en;q=0.9")


def browser_mix() -> list[tuple[float, Tool]]:
    """People's browsers with their share (Chrome dominates, as on most sites)."""
    mix: list[tuple[float, Tool]] = []
    for lang_i, lang in enumerate(LANGS):
        share = 0.35 if lang_i == 0 else 0.65 / (len(LANGS) - 1)
        for version, vs in ((152, 0.6), (151, 0.3), (150, 0.1)):
            mix += [
                (0.30 * share * vs, _chrome(version, WINDOWS, '"Windows"', lang)),
                (0.12 * share * vs, _chrome(version, MAC, '"macOS"', lang)),
                (0.20 * share * vs, _chrome(version, ANDROID, '"Android"', lang, mobile=True)),
            ]
        mix += [
            (0.10 * share, Tool("firefox-153", "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:153.0) "
                                "Gecko/20100101 Firefox/153.0", JA4_FIREFOX, "firefox", lang)),
            (0.28 * share, Tool("safari-ios-26", "Mozilla/5.0 (iPhone; CPU iPhone OS 18_6 like Mac OS X) "
                                "AppleWebKit/605.1.15 (KHTML, like Gecko) Version/26.1 Mobile/15E148 "
                                "Safari/604.1", JA4_SAFARI, "safari", lang, mobile=True)),
        ]
    return mix


SCRAPY = Tool("scrapy", "Scrapy/2.19.0 (+https://scrapy.org)", JA4_PYTHON, "library")
REQUESTS = Tool("python-requests", "python-requests/2.34.2", JA4_PYTHON, "library")
HTTPX = Tool("httpx", "python-httpx/0.28.1", JA4_PYTHON, "library")
CURL_CFFI = Tool(
    "curl-cffi-chrome",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/152.0.0.0 Safari/537.36",
    JA4_CHROME, "library", "en-US,en;q=0.9", '"Windows"',
    '"Chromium";v="152", "Not?A_Brand";v="24", "Google Chrome";v="152"',
)
HEADLESS_ACCEPT = ("text/html,application/xhtml+xml,application/xml;q=0.9,image/jxl,image/avif,image/webp,"
                   "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7")
HEADLESS = Tool(
    "playwright-chromium",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "HeadlessChrome/156.0.0.0 Safari/537.36",
    JA4_CHROME, "chrome", "en-US,en;q=0.9", '"Linux"', '"Not:A-Brand";v="8", "Chromium";v="156"',
    nav_accept=HEADLESS_ACCEPT,
)
# The same fleet with the usual stealth patch: the user-agent says Chrome; the client
# hints still name Chromium alone.
HEADLESS_STEALTH = Tool(
    "playwright-chromium-stealth",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36",
    JA4_CHROME, "chrome", "en-US,en;q=0.9", '"Linux"', '"Not:A-Brand";v="8", "Chromium";v="156"',
    nav_accept=HEADLESS_ACCEPT,
)
APP_IOS = Tool("app-ios", "SocialApp/5.12.0 (iPhone; iOS 26.1; Scale/3.00)", JA4_SAFARI, "app")
APP_ANDROID = Tool("app-android", "SocialApp/5.12.0 (Android 16; Pixel 9) okhttp/4.12.0", JA4_OKHTTP,
                   "app")
GOOGLEBOT = Tool(
    "googlebot",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; Googlebot/2.1; "
    "+http://www.google.com/bot.html) Chrome/152.0.7444.59 Safari/537.36",
    JA4_GOOGLEBOT, "crawler",
)
# Debian's Firefox ESR on Linux, as test_simulate_tools drives it.
FIREFOX_LINUX = Tool("firefox-153-linux",
                     "Mozilla/5.0 (X11; Linux x86_64; rv:153.0) Gecko/20100101 Firefox/153.0",
                     JA4_FIREFOX, "firefox")
BINGBOT = Tool(
    "bingbot",
    "Mozilla/5.0 AppleWebKit/537.36 (KHTML, like Gecko; compatible; bingbot/2.0; "
    "+http://www.bing.com/bingbot.htm) Chrome/152.0.0.0 Safari/537.36",
    JA4_GOOGLEBOT, "crawler",
)
