"""JupyterLab offers no way to save a file from the user's server onto the laptop.

The UI half of the download guard: our lab extension disables (and the sys-prefix
page_config locks) JupyterLab's download, export and open-in-new-browser-tab plugins, so
neither the menus, the file browser's context menu nor the command palette offer them;
and a download scripted from the lab page (a `download` link, a fetch of `/files/`) saves
nothing, whatever the link points at.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Download, Page, expect

from tests.support.browser import new_context
from tests.support.hub import RunningHub
from tests.support.lab_page import (
    close_menus,
    dismiss_notifications,
    menu_labels,
    open_lab,
    open_main_menu,
    page_config,
    palette_search,
)

pytestmark = pytest.mark.browser

USER = "alice"
SENTINEL = "KUMOHUB-SENTINEL-7c1e9b"
DATA_FILE = "quarterly-revenue.csv"

# The commands behind each way out, and the plugin that registers them (JupyterLab 4.5.8).
COMMAND_PLUGINS = {
    "docmanager:download": "@jupyterlab/docmanager-extension:download",
    "filebrowser:download": "@jupyterlab/filebrowser-extension:download",
    "filebrowser:copy-download-link": "@jupyterlab/filebrowser-extension:download",
    "filebrowser:open-browser-tab": "@jupyterlab/filebrowser-extension:open-browser-tab",
    "docmanager:open-browser-tab": "@jupyterlab/docmanager-extension:open-browser-tab",
    "notebook:export-to-format": "@jupyterlab/notebook-extension:export",
}
# Viewers that point the browser at /files/ (their media controls offer "Download").
FILES_VIEWERS = {
    "@jupyterlab/pdf-extension:factory",
    "@jupyterlab/audio-extension:plugin",
    "@jupyterlab/video-extension:plugin",
}
# Labels those plugins give their menu items and palette entries.
FORBIDDEN_LABEL = re.compile(
    r"download|new browser tab|save and export|export notebook", re.IGNORECASE
)


def plant_user_page_config(home: Path) -> None:
    """What a user writes to switch the plugins back on (and our extension off)."""
    labconfig = home / ".jupyter" / "labconfig"
    labconfig.mkdir(parents=True, exist_ok=True)
    switched = dict.fromkeys(COMMAND_PLUGINS.values(), False) | {"@kumohub/lab": True}
    (labconfig / "page_config.json").write_text(json.dumps({"disabledExtensions": switched}))


@pytest.fixture(scope="module")
def lab(browser: Browser, hub: RunningHub) -> Iterator[Page]:
    """Alice's JupyterLab with a data file in her home folder and a notebook open.

    Her home also holds a user-level page_config.json that tries to undo all of it.
    """
    home = hub.state / "home" / USER
    home.mkdir(parents=True, exist_ok=True)
    (home / DATA_FILE).write_text(f"region,revenue\nemea,{SENTINEL}\n")
    plant_user_page_config(home)
    context = new_context(browser)
    page = context.new_page()
    try:
        open_lab(page, hub, USER)
        page.locator(".jp-LauncherCard[data-category='Notebook']").first.click()
        expect(page.locator(".jp-NotebookPanel .jp-Cell").first).to_be_visible()
        expect(page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']")).to_be_visible(
            timeout=60_000
        )
        dismiss_notifications(page)
        yield page
    finally:
        context.close()


def test_lab_page_config_disables_and_locks_every_download_plugin(lab: Page) -> None:
    """Whatever the user's own ~/.jupyter/labconfig says (see the `lab` fixture)."""
    config = page_config(lab)
    assert "@kumohub/lab" in {ext["name"] for ext in config["federated_extensions"]}
    required = set(COMMAND_PLUGINS.values()) | FILES_VIEWERS
    missing = required - set(config["disabledExtensions"])
    assert not missing, f"still enabled: {sorted(missing)}"
    unlocked = required - set(config["lockedExtensions"])
    assert not unlocked, f"a user could re-enable these from the plugin manager: {unlocked}"


def test_the_plugin_manager_refuses_to_turn_them_back_on(lab: Page) -> None:
    """What Lab's Plugin Manager does when a user flips a switch: refused, they are locked."""
    answers = lab.evaluate(
        """async ([url, requests]) => {
            const xsrf = document.cookie.match(/(?:^|; )_xsrf=([^;]*)/)[1];
            const answers = [];
            for (const [cmd, plugin_name] of requests) {
                const response = await fetch(url, {
                    method: 'POST',
                    headers: {'X-XSRFToken': xsrf, 'Content-Type': 'application/json'},
                    body: JSON.stringify({cmd, plugin_name}),
                });
                answers.push({status: response.status, body: await response.json()});
            }
            return answers;
        }""",
        [
            f"/user/{USER}/lab/api/plugins",
            [
                ["enable", "@jupyterlab/docmanager-extension:download"],
                ["enable", "@jupyterlab/filebrowser-extension:download"],
                ["disable", "@kumohub/lab"],
            ],
        ],
    )
    for answer in answers:
        assert answer["status"] == 500, answers
        assert "locked" in answer["body"]["message"], answers
    # A freshly served /lab page still disables them.
    fresh = lab.context.request.get(lab.url.split("?")[0]).text()
    config = json.loads(
        re.search(r'id="jupyter-config-data"[^>]*>(.*?)</script>', fresh, re.S).group(1)
    )
    assert set(COMMAND_PLUGINS.values()) <= set(config["disabledExtensions"])


def test_menus_context_menu_and_palette_offer_no_download_or_export(
    lab: Page, artifacts_dir: Path
) -> None:
    file_menu = menu_labels(open_main_menu(lab, "File"))
    assert "Save Notebook" in file_menu, f"the File menu did not open fully: {file_menu}"
    assert not [label for label in file_menu if FORBIDDEN_LABEL.search(label)], file_menu
    close_menus(lab)

    dismiss_notifications(lab)
    item = lab.locator(".jp-DirListing-item", has_text=DATA_FILE)
    item.click(button="right")
    context_menu = lab.locator(".lm-Menu").last
    labels = menu_labels(context_menu)
    assert {"Open", "Rename", "Copy Path"} <= set(labels), labels
    assert not [label for label in labels if FORBIDDEN_LABEL.search(label)], labels
    context_menu.locator(".lm-Menu-item", has_text="Open With").hover()
    open_with = menu_labels(lab.locator(".lm-Menu").last)
    assert open_with, "the Open With submenu did not open"
    assert not [label for label in open_with if FORBIDDEN_LABEL.search(label)], open_with
    lab.screenshot(path=str(artifacts_dir / "lab-no-download.png"))
    close_menus(lab)

    cell = lab.locator(".jp-NotebookPanel .jp-Cell .jp-InputPrompt").first
    assert palette_search(lab, "save", cell), "the palette lists nothing: its search is broken"
    for word in ("download", "browser tab", "export"):
        found = palette_search(lab, word, cell)
        offered = [label for label in found if FORBIDDEN_LABEL.search(label)]
        assert not offered, f"the command palette offers {offered} for {word!r}"


def click_download_link(page: Page, href: str, filename: str) -> None:
    """What a script (or HTML in a notebook output) does to make the browser save a file."""
    page.evaluate(
        """([href, filename]) => {
            const link = document.createElement('a');
            link.href = href;
            link.download = filename;
            document.body.appendChild(link);
            link.click();
            link.remove();
        }""",
        [href, filename],
    )


def test_a_download_scripted_from_the_lab_page_saves_nothing(lab: Page, hub: RunningHub) -> None:
    # Control: this browser does report downloads, from a page without the lab's sandbox.
    control_page = lab.context.new_page()
    control_page.goto(f"{hub.url}/hub/home")
    with control_page.expect_download(timeout=15_000) as control:
        click_download_link(control_page, "data:text/plain,control", "control.txt")
    assert control.value.suggested_filename == "control.txt"
    control_page.close()

    files_url = f"/user/{USER}/files/{DATA_FILE}"
    fetched = lab.evaluate(
        """async url => {
            const response = await fetch(url, {credentials: 'same-origin'});
            return {status: response.status, body: await response.text()};
        }""",
        files_url,
    )
    assert fetched["status"] == 403, fetched
    assert SENTINEL not in fetched["body"]

    downloads: list[Download] = []

    def record(download: Download) -> None:
        downloads.append(download)

    lab.on("download", record)
    try:
        click_download_link(lab, files_url, DATA_FILE)
        click_download_link(lab, f"{files_url}?download=1", DATA_FILE)
        click_download_link(lab, f"data:text/csv,region%2Crevenue%0Aemea%2C{SENTINEL}", "x.csv")
        blob_url = lab.evaluate(
            "text => URL.createObjectURL(new Blob([text], {type: 'text/csv'}))", SENTINEL
        )
        click_download_link(lab, blob_url, "y.csv")
        # A download starts within milliseconds of the click; give it ample time to show up.
        lab.wait_for_timeout(3_000)
    finally:
        lab.remove_listener("download", record)
    assert not downloads, [(d.url, d.suggested_filename) for d in downloads]
