"""VS Code from JupyterLab's launcher: the tile opens code-server's workbench in a new tab."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, expect

from tests.support.client import HubClient
from tests.support.hub import USER_PASSWORD, RunningHub
from tests.support.processes import wait_until
from tests.support.vscode import alive, code_server_pids

pytestmark = pytest.mark.browser

USER = "alice"


def sign_in_and_start(page: Page, hub: RunningHub) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", USER)
    page.fill("#password_input", USER_PASSWORD)
    page.click("#login_submit")
    page.check("input[name=profile][value=cpu-small]")
    page.click("form#spawn_form button[type=submit], form#spawn_form input[type=submit]")
    page.wait_for_url(f"**/user/{USER}/lab**", timeout=120_000)


def test_launcher_tile_opens_vscode_on_the_home_folder(
    page: Page, hub: RunningHub, artifacts_dir: Path
) -> None:
    home = hub.state / "home" / USER
    home.mkdir(parents=True, exist_ok=True)
    (home / "analysis-notes.md").write_text("# Notes\n")

    outside: list[str] = []

    def note_outside(request: Request) -> None:
        if not request.url.startswith((hub.url, "data:", "blob:")):
            outside.append(request.url)

    page.context.on("request", note_outside)

    sign_in_and_start(page, hub)
    tile = page.locator(".jp-LauncherCard", has_text="VS Code")
    expect(tile).to_be_visible(timeout=90_000)
    expect(tile.locator("img, svg").first).to_be_visible()

    with page.context.expect_page() as opened:
        tile.click()
    vscode = opened.value
    vscode.wait_for_url(re.compile(rf".*/user/{USER}/vscode/.*"), timeout=180_000)
    expect(vscode.locator(".monaco-workbench")).to_be_visible(timeout=180_000)

    # The explorer lists the home folder: files come over code-server's websocket.
    explorer_file = vscode.locator(".explorer-folders-view .monaco-list-row", has_text="analysis")
    expect(explorer_file).to_be_visible(timeout=120_000)
    vscode.screenshot(path=str(artifacts_dir / "vscode.png"))

    # Started with --disable-file-downloads: the explorer offers no "Download...".
    explorer_file.click(button="right")
    menu = vscode.locator(".context-view .monaco-menu")
    expect(menu).to_contain_text("Copy Path", timeout=30_000)
    expect(menu).not_to_contain_text("Download")
    vscode.keyboard.press("Escape")

    # Telemetry off: the browser asked nothing of any host but the platform's.
    assert outside == []

    # The whole tree, extension host included, ends with the server.
    pids = code_server_pids(home)
    assert len(pids) >= 2, "expected code-server and its extension host"
    client = HubClient(hub.url)
    assert client.login(USER, USER_PASSWORD).status_code == 302
    assert client.stop().status_code in (202, 204)
    client.wait_stopped()
    wait_until(
        lambda: not any(alive(pid) for pid in pids) and not code_server_pids(home),
        timeout=30,
        what="every code-server process to exit",
    )
