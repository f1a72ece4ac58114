from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from browser import launch_chromium  # noqa: E402
from playwright.sync_api import Browser, sync_playwright  # noqa: E402
from servers import Server, start_cli  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo site behind the shield, as `scrapeshield demo` runs it (2,000 users)."""
    server = start_cli(["demo", "--users", "2000", "--seed", "7"], tmp_path_factory.mktemp("demo"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Debian's Chromium under Playwright, one per test module (tests/browser.py)."""
    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        yield browser
        browser.close()
