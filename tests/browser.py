"""A real browser for tests: Debian's Chromium driven by Playwright (`playwright install` is
not used; the system package is). Waits for a concurrent apt install instead of skipping."""

from __future__ import annotations

import os
import time

from playwright.sync_api import Browser, Playwright

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def wait_for_chromium(timeout: float = 600.0, every: float = 30.0) -> str:
    """The Chromium executable, polling for it while another process may be installing it."""
    waited = 0.0
    while not os.access(CHROMIUM, os.X_OK):
        if waited >= timeout:
            raise RuntimeError(f"{CHROMIUM} missing after {timeout:.0f}s (make system-deps)")
        time.sleep(every)
        waited += every
    return CHROMIUM


def launch_chromium(playwright: Playwright) -> Browser:
    return playwright.chromium.launch(executable_path=wait_for_chromium(), args=CHROMIUM_ARGS)
