"""Browser-tier fixtures: one Chromium for the browser tests, a fresh context per test.

Playwright's sync API keeps an event loop running in the main thread while it is open, so
the browser is closed when this package's tests end: later tests may use asyncio.run().
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page

from tests.support.browser import launch_browser, new_context


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    with launch_browser() as running:
        yield running


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = new_context(browser)
    try:
        yield context.new_page()
    finally:
        context.close()
