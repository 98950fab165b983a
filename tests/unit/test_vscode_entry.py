"""How jupyter-server-proxy sees the VS Code entry point, with and without code-server."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

# Runs in a fresh interpreter so PATH decides, as it does when a user server starts.
LOAD_ENTRY_POINTS = """
import json, warnings
from jupyter_server_proxy.config import get_entrypoint_server_processes
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    servers = get_entrypoint_server_processes(None)
print(json.dumps({
    "servers": {
        s.name: {"title": s.launcher_entry.title, "icon": s.launcher_entry.icon_path,
                 "enabled": s.launcher_entry.enabled, "unix_socket": s.unix_socket,
                 "new_browser_tab": s.new_browser_tab, "timeout": s.timeout}
        for s in servers
    },
    "warnings": [str(w.message) for w in caught],
}))
"""


def load_entry_points(path: str) -> dict:
    env = {**os.environ, "PATH": path}
    result = subprocess.run(
        [sys.executable, "-c", LOAD_ENTRY_POINTS],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return json.loads(result.stdout)


def test_vscode_tile_is_offered_when_code_server_is_installed() -> None:
    executable = shutil.which("code-server", path=f"{Path(sys.executable).parent}:/usr/bin")
    assert executable, "code-server is not installed: run scripts/bootstrap.sh test"
    loaded = load_entry_points(f"{Path(executable).parent}:/usr/bin:/bin")
    vscode = loaded["servers"]["vscode"]
    assert vscode["title"] == "VS Code" and vscode["enabled"]
    assert vscode["unix_socket"] is True and vscode["new_browser_tab"] is True
    assert Path(vscode["icon"]).read_text().lstrip().startswith("<svg")


def test_without_code_server_there_is_no_tile_and_the_log_says_why(tmp_path: Path) -> None:
    loaded = load_entry_points(f"{tmp_path}:/usr/bin:/bin")
    assert "vscode" not in loaded["servers"]
    [warning] = [w for w in loaded["warnings"] if "vscode" in w]
    assert "code-server is not on PATH" in warning
