"""VS Code (code-server) in a user server, through the real hub, proxy and jupyter-server-proxy.

One server for alice serves the whole module; the last test stops it. code-server here is the
real npm build from scripts/bootstrap.d/20-code-server.sh.
"""

from __future__ import annotations

import html
import json
import re
import stat
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import pytest
import requests

from tests.support.client import HubClient
from tests.support.hub import USER_PASSWORD, RunningHub
from tests.support.ports import free_port
from tests.support.processes import start_process, stop_process_group, wait_until
from tests.support.vscode import (
    alive,
    code_server_pids,
    command_line,
    listening_tcp_inodes,
    listening_unix_sockets,
    process_group,
    raw_request,
    socket_inodes,
    unix_socket_get,
    user_server_pids,
    websocket_upgrade,
)

USER = "alice"
SENTINEL = f"kumohub-vscode-sentinel-{uuid.uuid4().hex}"


@dataclass
class VSCodeServer:
    hub: RunningHub
    client: HubClient
    home: Path
    data_file: Path
    team_file: Path
    workbench_html: str
    file_server_port: int

    @property
    def prefix(self) -> str:
        return f"/user/{USER}/vscode/"

    def workbench_settings(self) -> dict:
        match = re.search(
            r'id="vscode-workbench-web-configuration" data-settings="([^"]*)"', self.workbench_html
        )
        assert match, "the workbench configuration is missing from code-server's page"
        return json.loads(html.unescape(match.group(1)))

    def release_prefix(self) -> str:
        """code-server's versioned asset prefix, e.g. `stable-<commit>`."""
        match = re.search(r"(stable-[0-9a-f]{40})/static/", self.workbench_html)
        assert match, "no versioned static path in the workbench page"
        return match.group(1)

    def socket_path(self) -> str:
        for pid in code_server_pids(self.home):
            for arg in command_line(pid):
                if arg.startswith("--socket="):
                    return arg.removeprefix("--socket=")
        raise AssertionError("no code-server process with --socket for alice")


@pytest.fixture(scope="module")
def vscode(hub: RunningHub, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VSCodeServer]:
    client = hub.client()
    assert client.login(USER, USER_PASSWORD).status_code == 302
    assert client.api_spawn({"profile": "cpu-small"}).status_code in (201, 202)
    client.wait_ready()
    assert client.open_server().status_code == 200

    home = hub.state / "home" / USER
    data_file = home / "data" / "sales.csv"
    data_file.parent.mkdir(parents=True, exist_ok=True)
    data_file.write_text(f"region,amount\n{SENTINEL},42\n")
    team_file = hub.state / "team" / "finance.csv"
    team_file.write_text(f"account,balance\n{SENTINEL},7\n")

    # A file server the user could start from a terminal, on loopback inside their server.
    port = free_port()
    files_log = tmp_path_factory.mktemp("http-server") / "http.server.log"
    file_server = start_process(
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        log_path=files_log,
        cwd=data_file.parent,
    )
    try:
        page = client.server_api("GET", "vscode/", timeout=180)
        assert page.status_code == 200, page.text[:2000]
        yield VSCodeServer(hub, client, home, data_file, team_file, page.text, port)
    finally:
        stop_process_group(file_server)
        if client.server_model() is not None:
            client.stop()
            client.wait_stopped()


def test_workbench_loads_through_the_proxy_and_opens_the_home_folder(
    vscode: VSCodeServer,
) -> None:
    page = vscode.client.server_api("GET", "vscode/")
    assert page.status_code == 200
    # code-server redirects to the folder it opens: the user's home.
    assert page.url.startswith(f"{vscode.hub.url}{vscode.prefix}")
    assert parse_qs(urlparse(page.url).query)["folder"] == [str(vscode.home)]
    settings = vscode.workbench_settings()
    assert settings["isEnabledFileDownloads"] is False
    assert settings["isEnabledFileUploads"] is True
    assert settings["userDataPath"] == str(vscode.home / ".local" / "share" / "code-server")

    # The page's own scripts come through the same route.
    script = re.search(r'src="([^"]*workbench\.js)"', vscode.workbench_html)
    assert script, "no workbench script in the page"
    asset = vscode.client.server_api("GET", f"vscode/{script.group(1)}")
    assert asset.status_code == 200 and len(asset.content) > 100_000


def test_workbench_websocket_upgrades_through_hub_and_server_proxy(vscode: VSCodeServer) -> None:
    token = uuid.uuid4()
    path = f"{vscode.prefix}?reconnectionToken={token}&reconnection=false&skipWebSocketFrames=false"
    assert websocket_upgrade(vscode.client, path) == 101


def test_code_server_listens_on_a_private_unix_socket_and_no_tcp_port(
    vscode: VSCodeServer,
) -> None:
    pids = code_server_pids(vscode.home)
    assert pids, "no code-server process for alice"
    socket_path = Path(vscode.socket_path())

    mode = socket_path.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) == 0o600
    assert stat.S_IMODE(socket_path.parent.stat().st_mode) == 0o700

    owned = set().union(*(socket_inodes(pid) for pid in pids))
    listening_paths = {listening_unix_sockets().get(inode) for inode in owned}
    assert str(socket_path) in listening_paths
    assert not owned & listening_tcp_inodes(), "a code-server process listens on a TCP port"


def test_code_server_serves_files_by_path_when_reached_without_the_guard(
    vscode: VSCodeServer,
) -> None:
    """The threat the proxy routes below must stop: code-server itself hands out any file."""
    direct = unix_socket_get(
        vscode.socket_path(), f"/vscode-remote-resource?path={quote(str(vscode.data_file))}"
    )
    assert SENTINEL.encode() in direct.body
    served = requests.get(f"http://127.0.0.1:{vscode.file_server_port}/sales.csv", timeout=10)
    assert SENTINEL in served.text


def download_attempts() -> list[tuple[str, str, dict[str, str]]]:
    """(id, path template, headers). Placeholders: {prefix} {release} {file} {team} {home}
    {qfile} (percent-encoded file path) {port} (the user's loopback file server) and
    {rr} (`vscode-remote-resource?path=`, code-server's serve-any-file route)."""
    return [
        ("remote-resource", "{prefix}{rr}{file}", {}),
        ("remote-resource-versioned", "{prefix}{release}/{rr}{file}", {}),
        ("remote-resource-encoded-path", "{prefix}{rr}{qfile}", {}),
        ("remote-resource-encoded-name", "{prefix}%76scode-remote-resource?path={file}", {}),
        ("remote-resource-trailing-slash", "{prefix}vscode-remote-resource/?path={file}", {}),
        ("remote-resource-double-slash", "{prefix}/{rr}{file}", {}),
        ("remote-resource-dot-segment", "{prefix}./{rr}{file}", {}),
        ("remote-resource-dotdot-segment", "{prefix}x/../{rr}{file}", {}),
        ("remote-resource-encoded-dotdot", "{prefix}x/%2e%2e/{rr}{file}", {}),
        ("remote-resource-repeated-arg-first", "{prefix}{rr}{file}&path=/etc/hostname", {}),
        ("remote-resource-repeated-arg-last", "{prefix}{rr}/etc/hostname&path={file}", {}),
        ("remote-resource-dotdot-in-arg", "{prefix}{rr}{home}/data/../data/sales.csv", {}),
        ("remote-resource-via-team-symlink", "{prefix}{rr}{home}/team/finance.csv", {}),
        ("remote-resource-team-folder", "{prefix}{rr}{team}", {}),
        ("remote-resource-range", "{prefix}{rr}{file}", {"Range": "bytes=0-"}),
        ("remote-resource-extra-args", "{prefix}{rr}{file}&tkn=x&reconnection=1", {}),
        ("port-proxy", "{prefix}proxy/{port}/sales.csv", {}),
        ("port-proxy-absolute", "{prefix}absproxy/{port}/sales.csv", {}),
        ("port-proxy-encoded", "{prefix}%70roxy/{port}/sales.csv", {}),
        ("port-proxy-double-slash", "{prefix}/proxy/{port}/sales.csv", {}),
        ("static-traversal", "{prefix}_static/" + "..%2f" * 12 + "{file}", {}),
        ("versioned-static-traversal", "{prefix}{release}/static/" + "..%2f" * 12 + "{file}", {}),
    ]


@pytest.mark.parametrize(
    ("template", "headers"),
    [pytest.param(template, headers, id=name) for name, template, headers in download_attempts()],
)
def test_code_server_routes_hand_no_file_bytes_to_the_browser(
    vscode: VSCodeServer, template: str, headers: dict[str, str]
) -> None:
    path = template.format(
        prefix=vscode.prefix,
        release=vscode.release_prefix(),
        file=vscode.data_file,
        qfile=quote(str(vscode.data_file), safe=""),
        team=vscode.team_file,
        home=vscode.home,
        port=vscode.file_server_port,
        rr="vscode-remote-resource?path=",
    )
    response = raw_request(vscode.client, path, headers=headers)
    assert SENTINEL.encode() not in response.body, (
        f"{path} returned the data file's contents (HTTP {response.status})"
    )


def test_code_server_stops_with_the_user_server(vscode: VSCodeServer) -> None:
    [server_pid] = user_server_pids(vscode.home)
    pids = code_server_pids(vscode.home)
    assert pids
    assert {process_group(pid) for pid in pids} == {process_group(server_pid)}

    assert vscode.client.stop().status_code in (202, 204)
    vscode.client.wait_stopped()
    wait_until(
        lambda: not any(alive(pid) for pid in pids) and not code_server_pids(vscode.home),
        timeout=30,
        what="code-server processes to exit",
    )
