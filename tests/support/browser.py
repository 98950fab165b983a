"""Debian's Chromium driven by Playwright (no browser download: `executable_path`)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from urllib.parse import urlparse

from playwright.sync_api import Browser, BrowserContext, Route, sync_playwright

CHROMIUM = os.environ.get("KUMOHUB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    "--disable-dev-shm-usage",
]


def _loopback_only(route: Route) -> None:
    """Tests talk only to loopback; anything else (CDNs, telemetry) is refused."""
    host = urlparse(route.request.url).hostname or ""
    if (
        host in ("localhost", "::1")
        or host.startswith("127.")
        or route.request.url.startswith(("data:", "blob:"))
    ):
        route.continue_()
    else:
        route.abort()


@contextlib.contextmanager
def launch_browser() -> Iterator[Browser]:
    with (
        tempfile.TemporaryDirectory(prefix="kumohub-chromium-") as profile_dir,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[*CHROMIUM_ARGS, f"--crash-dumps-dir={profile_dir}"],
        )
        try:
            yield browser
        finally:
            browser.close()


def new_context(browser: Browser) -> BrowserContext:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.route("**/*", _loopback_only)
    context.set_default_timeout(60_000)
    return context
