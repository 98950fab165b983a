"""JupyterLab in the browser, reached the way a user reaches it: sign in, start, wait.

Also small steps on Lab's own UI that several browser tests need (menus, the file
browser, the command palette, the page config), so each test reads as what the user does.
"""

from __future__ import annotations

import json
from typing import Any

from playwright.sync_api import Locator, Page, expect
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError

from .hub import USER_PASSWORD, RunningHub


def open_lab(page: Page, hub: RunningHub, user: str, profile: str = "cpu-small") -> str:
    """Sign in, start the server with `profile`, wait for the launcher; returns the lab URL."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", user)
    page.fill("#password_input", USER_PASSWORD)
    page.click("#login_submit")
    page.check(f"input[name=profile][value={profile}]")
    page.click("form#spawn_form button[type=submit], form#spawn_form input[type=submit]")
    page.wait_for_url(f"**/user/{user}/lab**", timeout=120_000)
    expect(page.locator(".jp-LauncherCard").first).to_be_visible(timeout=90_000)
    return f"{hub.url}/user/{user}/lab"


def dismiss_notifications(page: Page) -> None:
    """Close toasts (e.g. Lab's "get notified about Jupyter news?") so they cover nothing."""
    toasts = page.locator(".Toastify__toast")
    for close in page.get_by_role("button", name="Hide notification").all():
        if close.is_visible():
            close.click()
    expect(toasts).to_have_count(0)


def page_config(page: Page) -> dict[str, Any]:
    """The configuration the server rendered into the /lab page (what the front end obeys)."""
    return json.loads(page.locator("#jupyter-config-data").text_content() or "{}")


def menu_labels(menu: Locator) -> list[str]:
    """Visible item labels of an open Lumino menu, submenus included (opened on hover)."""
    expect(menu).to_be_visible()
    return [
        text.strip()
        for text in menu.locator(
            ".lm-Menu-item:not(.lm-mod-hidden) .lm-Menu-itemLabel"
        ).all_inner_texts()
        if text.strip()
    ]


def open_main_menu(page: Page, title: str) -> Locator:
    page.locator(".lm-MenuBar-itemLabel", has_text=title).first.click()
    return page.locator(".lm-Menu.lm-MenuBar-menu").last


def close_menus(page: Page) -> None:
    """Escape out of every open menu, submenus first."""
    page.keyboard.press("Escape")
    menus = page.locator(".lm-Menu")
    if menus.count():
        # A click outside closes every Lumino menu, wherever the keyboard focus went.
        page.locator("#jp-MainLogo").click()
    expect(menus).to_have_count(0)


def palette_search(page: Page, text: str, focus: Locator) -> list[str]:
    """Labels of the commands the palette offers for `text` (empty when none match).

    Opened with its shortcut from `focus` (a widget in the main area). The modal palette
    closes whenever it loses focus, and a notebook sometimes takes focus back a moment
    later; such an attempt is simply repeated.
    """
    palette = page.locator(".jp-ModalCommandPalette")
    search = palette.locator("input.lm-CommandPalette-input")
    labels = palette.locator(".lm-CommandPalette-item .lm-CommandPalette-itemLabel")
    for _attempt in range(4):
        focus.click()
        page.keyboard.press("Escape")
        page.keyboard.press("Control+Shift+C")
        try:
            search.fill(text, timeout=5_000)
            # The palette re-renders on the next frame; its content then names the query
            # or lists the hits.
            expect(palette.locator(".lm-CommandPalette-content")).to_contain_text(
                text, ignore_case=True, timeout=5_000
            )
        except (AssertionError, PlaywrightTimeoutError):
            continue
        found = [label.strip() for label in labels.all_inner_texts()]
        # A reading counts only if the palette was still open, on this query, after it.
        if search.is_visible() and search.input_value() == text:
            page.keyboard.press("Escape")
            expect(palette).to_be_hidden()
            return found
    raise AssertionError(f"the command palette kept closing while searching for {text!r}")
