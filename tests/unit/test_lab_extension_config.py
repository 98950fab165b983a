"""The lab extension's plugin lists: real JupyterLab 4.5.8 plugin ids, one list, locked.

The no-download UI rests on two copies of one list: `jupyterlab.disabledExtensions` in the
extension's package.json (applied wherever the labextension is installed) and the
sys-prefix `page_config.json` the wheel installs (which also locks them). A typo in a plugin
id silently disables nothing, so every id is checked against the installed JupyterLab.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from jupyterlab_server.config import get_page_config

REPO = Path(__file__).resolve().parents[2]
LAB = REPO / "extensions" / "lab"
PREFIX = Path(sys.prefix)
LAB_STATIC = PREFIX / "share" / "jupyter" / "lab" / "static"
PLUGIN_ID = re.compile(r'"(@jupyterlab/[a-z0-9-]+-extension:[A-Za-z0-9_-]+)"')

# The plugins the download guard's threat map names; more may be disabled, never fewer.
REQUIRED = {
    "@jupyterlab/docmanager-extension:download",
    "@jupyterlab/filebrowser-extension:download",
    "@jupyterlab/docmanager-extension:open-browser-tab",
    "@jupyterlab/filebrowser-extension:open-browser-tab",
    "@jupyterlab/notebook-extension:export",
    "@jupyterlab/pdf-extension:factory",
    "@jupyterlab/audio-extension:plugin",
    "@jupyterlab/video-extension:plugin",
}


def package_disabled() -> list[str]:
    package = json.loads((LAB / "package.json").read_text())
    return package["jupyterlab"]["disabledExtensions"]


def page_config() -> dict[str, dict[str, bool]]:
    return json.loads((LAB / "jupyter-config" / "labconfig" / "page_config.json").read_text())


@pytest.fixture(scope="module")
def core_plugin_ids() -> set[str]:
    """Every `@jupyterlab/...-extension:...` id that the installed JupyterLab's bundle defines."""
    text = "\n".join(p.read_text(errors="replace") for p in LAB_STATIC.glob("*.js"))
    return set(PLUGIN_ID.findall(text))


def test_every_disabled_id_is_a_plugin_of_the_installed_jupyterlab(
    core_plugin_ids: set[str],
) -> None:
    unknown = sorted(set(package_disabled()) - core_plugin_ids)
    assert not unknown, f"not plugins of JupyterLab at {LAB_STATIC}: {unknown}"


def test_the_download_and_export_plugins_are_all_disabled() -> None:
    assert set(package_disabled()) >= REQUIRED


def test_page_config_disables_and_locks_the_same_list_as_package_json() -> None:
    config = page_config()
    disabled = package_disabled()
    assert config["disabledExtensions"] == dict.fromkeys(disabled, True)
    locked = config["lockedExtensions"]
    assert dict.fromkeys(disabled, True).items() <= locked.items()
    assert locked.get("@kumohub/lab") is True, "users must not be able to disable our extension"


def test_the_installed_lab_page_config_disables_and_locks_them() -> None:
    """What `/lab` will serve from this environment (after scripts/bootstrap.sh)."""
    labextensions = PREFIX / "share" / "jupyter" / "labextensions"
    assert (labextensions / "@kumohub" / "lab" / "package.json").is_file(), (
        "kumohub-lab is not installed in this environment: run scripts/bootstrap.sh test"
    )
    installed = json.loads(
        (PREFIX / "etc" / "jupyter" / "labconfig" / "page_config.json").read_text()
    )
    assert installed == page_config()
    served = get_page_config([str(labextensions)], app_settings_dir=None)
    assert set(package_disabled()) <= set(served["disabledExtensions"])
    assert set(package_disabled()) <= set(served["lockedExtensions"])
    assert "@kumohub/lab" in {ext["name"] for ext in served["federated_extensions"]}
