"""The jupyter-server-proxy entry for code-server: the `/vscode/` route and its launcher tile.

code-server listens on a unix socket in a private temporary folder (no TCP port other local
processes could reach) with `--auth none`: the user server in front of it already checked the
hub login, and nothing but the proxy can reach the socket. Its own download paths (the
download command, its port proxy) are switched off with flags; the download guard closes the
routes code-server keeps serving regardless (`/vscode-remote-resource`, ...). File uploads stay
on: they bring data into the server, which the platform's rule does not forbid.

Every option is on the command line, and the configuration file is one we ship, so nothing in
the user's home (`~/.config/code-server/config.yaml`) can add options such as a TCP bind
address. When code-server is not installed the entry point raises: jupyter-server-proxy then
logs why and shows no tile, rather than a tile that only leads to an error page.
"""

from __future__ import annotations

import shutil
from importlib.resources import files
from pathlib import Path
from typing import Any

TITLE = "VS Code"
EXECUTABLE = "code-server"
# First start on a busy 2-core machine (or a cold EFS home) can take tens of seconds.
START_TIMEOUT_SECONDS = 120

# Switches that keep code-server from handing files to the browser or reaching out by itself.
LOCKDOWN_FLAGS = (
    "--auth=none",
    "--disable-file-downloads",
    "--disable-proxy",
    "--disable-telemetry",
    "--disable-update-check",
    "--disable-workspace-trust",
    "--disable-getting-started-override",
)


class CodeServerMissing(RuntimeError):
    """code-server is not on PATH, so there is nothing to launch."""


def resource(name: str) -> str:
    return str(files(__package__).joinpath(name))


def find_code_server() -> str:
    path = shutil.which(EXECUTABLE)
    if path is None:
        raise CodeServerMissing(
            f"{EXECUTABLE} is not on PATH; VS Code is unavailable in this server "
            "(local mode: run scripts/bootstrap.sh; images: see images/user/Dockerfile)"
        )
    return path


def data_dirs(home: Path) -> tuple[Path, Path]:
    """Settings and extensions live in the user's home, so they persist across servers."""
    user_data = home / ".local" / "share" / "code-server"
    return user_data, user_data / "extensions"


def command(executable: str, unix_socket: str, home: Path) -> list[str]:
    user_data, extensions = data_dirs(home)
    return [
        executable,
        f"--socket={unix_socket}",
        "--socket-mode=600",
        f"--config={resource('code-server.yaml')}",
        f"--user-data-dir={user_data}",
        f"--extensions-dir={extensions}",
        *LOCKDOWN_FLAGS,
        str(home),
    ]


def setup_vscode() -> dict[str, Any]:
    """jupyter-server-proxy server configuration (entry point `vscode`)."""
    executable = find_code_server()

    def build_command(unix_socket: str) -> list[str]:
        # Resolved at launch: HOME is the user's home in the server's environment.
        return command(executable, unix_socket, Path.home())

    return {
        "command": build_command,
        "unix_socket": True,
        "timeout": START_TIMEOUT_SECONDS,
        "new_browser_tab": True,
        "launcher_entry": {
            "enabled": True,
            "title": TITLE,
            "icon_path": resource("vscode.svg"),
        },
    }
