"""The download guard end to end: real hub, proxy, user servers, kernels and terminals.

One hub serves the module. Alice's server holds data files with a random sentinel string
(CSV, Parquet, a notebook whose outputs show the data, the team folder, files behind
symlinks, a user-made kernelspec and lab extension, echo stores a kernel filled); from a
kernel she also serves her home with `python -m http.server`. The bypass corpus
(guard_corpus.py) then tries every line of the threat map against her server, through the
browser session, her API token and curl, and no response may carry the sentinel. The
legitimate workflow (open, edit, save and run a notebook, see its image output, use a
terminal) must keep working, and bob tries to switch the guard off.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import requests
from kumohub.spawner.guard_args import download_guard_args

from kumohub.settings import GuardPolicy
from tests.integration.guard_corpus import (
    ABSENT,
    BLOCKED,
    CORPUS,
    CURL,
    ELSEWHERE,
    GUARDED,
    REFUSED,
    THREATS,
    TOKEN,
    TOKEN_QUERY,
    Attempt,
)
from tests.support.client import HubClient
from tests.support.hub import USER_PASSWORD, RunningHub, start_hub
from tests.support.jupyter_session import (
    Kernel,
    RawResponse,
    kernel,
    raw_request,
    session_headers,
    terminal_output,
)
from tests.support.ports import free_port
from tests.support.processes import (
    server_processes,
    start_process,
    stop_process_group,
    wait_until,
)

SENTINEL = f"KUMOHUB-SENTINEL-{secrets.token_hex(16)}"
GUARD_HEADER = "X-KumoHub-Guard"
GUARDED_CONTENTS_MANAGER = "kumohub.extensions.guard.contents.GuardedContentsManager"
PROFILE = {"profile": "cpu-small", "image": "datascience"}
ECHO_CAP = 256 * 1024  # the test hub's echo-store cap (the default is 1 MiB)
BULK = ECHO_CAP + 64 * 1024


def leak_in(data: bytes, sentinel: str = SENTINEL) -> str | None:
    """How `data` carries the sentinel, if it does: in clear, base64 (any alignment) or hex."""
    raw = sentinel.encode()
    if raw in data:
        return "clear"
    if raw.hex().encode() in data or raw.hex().upper().encode() in data:
        return "hex"
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw)
        if encoded[4:-4] in data:
            return "base64"
    return None


def csv_text() -> str:
    return f"id,customer,secret\n1,acme,{SENTINEL}\n2,globex,{SENTINEL}\n"


def plant_data(home: Path, outside: Path) -> None:
    """Data in the home as a user leaves it (written here, as a terminal would)."""
    (home / "data.csv").write_text(csv_text())
    table = pa.table({"customer": ["acme", "globex"], "secret": [SENTINEL, SENTINEL]})
    pq.write_table(table, home / "secret.parquet", compression="none")
    (home / "disguised.py").write_bytes((home / "secret.parquet").read_bytes())
    (home / "big.txt").write_text(("line " + SENTINEL + "\n") * (6 * 1024 * 1024 // 60))
    (home / "notes.txt").write_text("Meeting notes: nothing secret here.\n")
    (home / "sub").mkdir(exist_ok=True)
    report = {
        "cells": [
            {
                "cell_type": "code",
                "execution_count": 1,
                "metadata": {},
                "source": "import pandas as pd\npd.read_csv('data.csv')",
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": 1,
                        "metadata": {},
                        "data": {"text/plain": csv_text()},
                    }
                ],
            }
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (home / "report.ipynb").write_text(json.dumps(report))
    (home / "link_to_data.py").symlink_to(home / "data.csv")
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "secret.txt").write_text(SENTINEL)
    (home / "outside.txt").symlink_to(outside / "secret.txt")
    (home / "outdir").symlink_to(outside, target_is_directory=True)
    team = (home / "team").resolve()
    (team / "data.csv").write_text(csv_text())
    (team / "notes.md").write_text("# Team notes\n")
    data_dir = home / ".local" / "share" / "jupyter"
    kernelspec = data_dir / "kernels" / "evil"
    kernelspec.mkdir(parents=True, exist_ok=True)
    (kernelspec / "kernel.json").write_text(
        json.dumps({"argv": ["python", "-c", SENTINEL], "display_name": SENTINEL})
    )
    (kernelspec / "logo-64x64.png").write_text(csv_text())
    (kernelspec / "data.csv").write_text(csv_text())
    extension = data_dir / "labextensions" / "evil"
    (extension / "static").mkdir(parents=True, exist_ok=True)
    (extension / "themes" / "evil").mkdir(parents=True, exist_ok=True)
    (extension / "static" / "remoteEntry.js").write_text(f"var data = {csv_text()!r};")
    (extension / "package.json").write_text(json.dumps({"name": "evil", "data": SENTINEL}))
    (extension / "themes" / "evil" / "index.css").write_text(f"/* {SENTINEL} */")


FILL_ECHO_STORES = """
import json, os, urllib.request
bulk = open('data.csv').read() * ({bulk} // len(open('data.csv').read()) + 1)
folder = os.path.expanduser('~/.jupyter/serverconfig')
os.makedirs(folder, exist_ok=True)
json.dump({{'data': bulk}}, open(os.path.join(folder, 'kumo.json'), 'w'))
server = os.environ['JUPYTERHUB_SERVICE_URL'].rstrip('/')
headers = {{'Authorization': 'token ' + os.environ['JUPYTERHUB_API_TOKEN'],
           'Content-Type': 'application/json'}}
def put(path, model):
    request = urllib.request.Request(
        server + path, data=json.dumps(model).encode(), method='PUT', headers=headers)
    return urllib.request.urlopen(request).status
# Settings keep their raw JSON5 text, comments included.
raw = '// ' + bulk.replace('\\n', ' ') + '\\n{{"theme": "JupyterLab Light"}}'
print(put('/lab/api/settings/@jupyterlab/apputils-extension:themes', {{'raw': raw}}),
      put('/lab/api/workspaces/bulk', {{'data': {{'bulk': bulk}}, 'metadata': {{'id': 'bulk'}}}}))
"""

START_HTTP_SERVER = """
import subprocess, sys
server = subprocess.Popen(
    [sys.executable, '-m', 'http.server', '{port}', '--bind', '127.0.0.1', '--directory', '.'],
    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(server.pid)
"""


@dataclass
class UserServer:
    """A signed-in user, their running server and what they can learn from inside it."""

    hub: RunningHub
    client: HubClient
    home: Path
    token: str
    server_port: int
    http_port: int
    kernel: Kernel

    @property
    def user(self) -> str:
        return self.client.user or ""

    def fill(self, text: str) -> str:
        return Template(text).substitute(
            home=str(self.home).lstrip("/"),
            user=self.user,
            http_port=self.http_port,
            server_port=self.server_port,
            vscode_data=str(self.home / ".local" / "share" / "code-server").lstrip("/"),
        )

    def send(self, attempt: Attempt) -> RawResponse:
        path = self.fill(attempt.path)
        raw_path = "/" + path if attempt.hub else self.client.server_prefix() + path
        headers = dict(attempt.headers)
        body = self.fill(attempt.body).encode() if attempt.body is not None else None
        if body is not None:
            headers.setdefault("Content-Type", "application/json")
        if attempt.via == CURL:
            return curl(self.hub.url + raw_path, attempt.method, self.token, headers, body)
        if attempt.via == TOKEN:
            headers["Authorization"] = f"token {self.token}"
        elif attempt.via == TOKEN_QUERY:
            raw_path += ("&" if "?" in raw_path else "?") + f"token={self.token}"
        else:
            headers.update(session_headers(self.client, raw_path))
        return raw_request(self.hub.url, raw_path, attempt.method, headers, body)


def curl(
    url: str, method: str, token: str, headers: dict[str, str], body: bytes | None
) -> RawResponse:
    """The request as curl on a laptop sends it (`--path-as-is`: dot segments untouched)."""
    command = ["curl", "-sS", "--path-as-is", "-D", "-", "-H", f"Authorization: token {token}"]
    command += ["-I"] if method == "HEAD" else ["-X", method]
    for name, value in headers.items():
        command += ["-H", f"{name}: {value}"]
    if body is not None:
        command += ["--data-binary", "@-"]
    done = subprocess.run([*command, url], input=body, capture_output=True, timeout=60)
    head, _, payload = done.stdout.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    found = dict(line.split(": ", 1) for line in lines if ": " in line)
    return RawResponse(int(status_line.split()[1]), found, payload)


def signed_in(hub: RunningHub, user: str) -> HubClient:
    client = hub.client()
    assert client.login(user, USER_PASSWORD).status_code == 302
    return client


def start_server(client: HubClient) -> None:
    assert client.api_spawn(PROFILE).status_code in (201, 202)
    client.wait_ready(timeout=120)
    assert client.open_server().status_code == 200


def audit_events(hub: RunningHub) -> list[dict[str, object]]:
    path = hub.folder / "audit" / "guard.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def guard_hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningHub]:
    folder = tmp_path_factory.mktemp("guard")
    audit_log = str(folder / "audit" / "guard.jsonl")
    overrides = {"guard": {"audit_log_path": audit_log, "echo_store_max_bytes": ECHO_CAP}}
    with start_hub(folder, overrides) as hub:
        yield hub


@pytest.fixture(scope="module")
def alice(guard_hub: RunningHub) -> Iterator[UserServer]:
    client = signed_in(guard_hub, "alice")
    start_server(client)
    home = guard_hub.state / "home" / "alice"
    plant_data(home, guard_hub.folder / "outside")
    with kernel(client) as session:
        env = json.loads(
            session.run(
                "import json, os; print(json.dumps({k: os.environ[k] for k in "
                "('JUPYTERHUB_API_TOKEN', 'JUPYTERHUB_SERVICE_URL')}))"
            )
        )
        http_port = free_port()
        session.run(START_HTTP_SERVER.format(port=http_port))
        direct = f"http://127.0.0.1:{http_port}/data.csv"

        def serving() -> bool:
            try:
                return SENTINEL in requests.get(direct, timeout=2).text
            except requests.RequestException:
                return False

        # The user's own server really hands out the data: only the guard stands between.
        wait_until(serving, timeout=30, what="the user's http.server")
        assert session.run(FILL_ECHO_STORES.format(bulk=BULK)).split() == ["204", "204"]
        server_port = int(env["JUPYTERHUB_SERVICE_URL"].rsplit(":", 1)[1].split("/")[0])
        yield UserServer(
            guard_hub, client, home, env["JUPYTERHUB_API_TOKEN"], server_port, http_port, session
        )
    client.stop()
    client.wait_stopped()


# -- the bypass corpus -------------------------------------------------------------------


def test_the_corpus_covers_every_line_of_the_threat_map() -> None:
    assert len(CORPUS) >= 60
    covered = {attempt.threat for attempt in CORPUS}
    assert covered == set(THREATS), set(THREATS) ^ covered
    ids = [attempt.id for attempt in CORPUS]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("attempt", CORPUS, ids=[attempt.id for attempt in CORPUS])
def test_bypass_attempt(alice: UserServer, attempt: Attempt) -> None:
    response = alice.send(attempt)
    head = json.dumps(response.headers).encode()
    assert leak_in(response.body + head) is None, (response.status, response.body[:300])
    guarded = bool(response.header(GUARD_HEADER))
    detail = (response.status, response.body[:300])
    if attempt.outcome == BLOCKED:
        assert response.status == 403 and guarded, detail
    elif attempt.outcome == GUARDED:
        assert response.status == 403, detail
        assert b"Blocked by the KumoHub download guard" in response.body, detail
    elif attempt.outcome == REFUSED:
        assert 400 <= response.status < 500, detail
    elif attempt.outcome == ABSENT:
        assert response.status == 404 or (response.status == 403 and guarded), detail
    elif attempt.outcome == ELSEWHERE:
        assert not 200 <= response.status < 300, detail


def test_refused_renames_leave_the_file_alone(alice: UserServer) -> None:
    assert (alice.home / "data.csv").read_text() == csv_text()
    assert not (alice.home / "data.py").exists() and not (alice.home / "s.txt").exists()


def test_copies_keep_their_type_and_stay_unreadable(alice: UserServer) -> None:
    copied = alice.client.server_api("POST", "api/contents", json={"copy_from": "data.csv"})
    assert copied.status_code == 201, copied.text
    name = copied.json()["name"]
    assert name.endswith(".csv") and leak_in(copied.content) is None
    read = alice.client.server_api("GET", f"api/contents/{name}")
    assert read.status_code == 403 and leak_in(read.content) is None


def test_each_refusal_is_one_audit_event_without_contents(
    alice: UserServer, guard_hub: RunningHub
) -> None:
    marker = secrets.token_hex(6)
    attempts = [
        Attempt("files", f"files/audit-{marker}-1.csv"),
        Attempt("files", f"lab/%2e%2e/files/audit-{marker}-2.csv", method="HEAD"),
        Attempt("token", f"proxy/{alice.http_port}/audit-{marker}-3.csv", via=TOKEN),
        Attempt("contents", f"api/contents/audit-{marker}-4.csv", method="GET"),
    ]
    for attempt in attempts:
        assert alice.send(attempt).status == 403

    def recorded() -> list[dict[str, object]]:
        return [e for e in audit_events(guard_hub) if marker in str(e["path"])]

    wait_until(lambda: len(recorded()) >= len(attempts), timeout=10, what="audit events")
    events = recorded()
    assert len(events) == len(attempts)
    by_path = {event["path"]: event for event in events}
    assert set(by_path) == {
        f"files/audit-{marker}-1.csv",
        f"files/audit-{marker}-2.csv",
        f"proxy/{alice.http_port}/audit-{marker}-3.csv",
        f"api/contents/audit-{marker}-4.csv",
    }
    for event in events:
        assert event["__schema__"] == "https://kumohub.dev/events/download-guard/v1"
        assert event["user"] == "alice" and event["server_owner"] == "alice"
        assert event["server_name"] == "" and event["reason"]
    assert by_path[f"files/audit-{marker}-2.csv"]["method"] == "HEAD"
    assert by_path[f"proxy/{alice.http_port}/audit-{marker}-3.csv"]["route_class"] == "proxy"
    log = (guard_hub.folder / "audit" / "guard.jsonl").read_bytes()
    assert leak_in(log) is None
    assert {e["route_class"] for e in audit_events(guard_hub)} >= {
        "files",
        "nbconvert",
        "proxy",
        "contents",
        "code-server-file",
        "echo-store",
    }


# -- the legitimate workflow -------------------------------------------------------------

MAKE_PNG = textwrap.dedent(
    """
    import struct, zlib
    from IPython.display import Image, display

    def png(width, height):
        rows = b"".join(b"\\x00" + b"\\x20\\x80\\xe0" * width for _ in range(height))
        def chunk(kind, data):
            body = kind + data
            return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
        header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
        return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", header)
                + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))

    display(Image(data=png(8, 8)))
    print(6 * 7)
    """
)


def test_open_edit_save_and_run_a_notebook_with_an_image_output(alice: UserServer) -> None:
    api = alice.client.server_api
    notebook = {
        "cells": [{"cell_type": "code", "metadata": {}, "source": "1 + 1", "outputs": []}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    created = api("PUT", "api/contents/plot.ipynb", json={"type": "notebook", "content": notebook})
    assert created.status_code == 201, created.text

    opened = api("GET", "api/contents/plot.ipynb?type=notebook&content=1")
    assert opened.status_code == 200
    model = opened.json()["content"]
    model["cells"][0]["source"] = MAKE_PNG
    saved = api("PUT", "api/contents/plot.ipynb", json={"type": "notebook", "content": model})
    assert saved.status_code == 200, saved.text

    messages = alice.kernel.execute(MAKE_PNG)
    outputs = []
    for message in messages:
        if message["msg_type"] == "display_data":
            outputs.append({"output_type": "display_data", **message["content"]})
        elif message["msg_type"] == "stream":
            outputs.append({"output_type": "stream", **message["content"]})
    assert any(output.get("text") == "42\n" for output in outputs)
    model["cells"][0]["outputs"] = outputs
    model["cells"][0]["execution_count"] = 1
    assert (
        api("PUT", "api/contents/plot.ipynb", json={"type": "notebook", "content": model})
    ).status_code == 200

    reopened = api("GET", "api/contents/plot.ipynb?type=notebook&content=1").json()["content"]
    [image] = [o for o in reopened["cells"][0]["outputs"] if "image/png" in o.get("data", {})]
    assert base64.b64decode(image["data"]["image/png"]).startswith(b"\x89PNG\r\n\x1a\n")
    page = alice.client.open_server(page="lab/tree/plot.ipynb")
    assert page.status_code == 200 and "JupyterLab" in page.text


def test_text_files_and_the_team_folder_open_in_the_editor(alice: UserServer) -> None:
    api = alice.client.server_api
    notes = api("GET", "api/contents/notes.txt?type=file&format=text")
    assert notes.status_code == 200 and notes.json()["content"].startswith("Meeting notes")
    team = api("GET", "api/contents/team/notes.md")
    assert team.status_code == 200 and team.json()["content"] == "# Team notes\n"
    listing = api("GET", "api/contents/team")
    assert {item["name"] for item in listing.json()["content"]} >= {"data.csv", "notes.md"}
    metadata = api("GET", "api/contents/data.csv?content=0")
    assert metadata.status_code == 200 and metadata.json()["size"] > 0
    renamed = api("PATCH", "api/contents/notes.txt", json={"path": "notes.md"})
    assert renamed.status_code == 200
    assert api("PATCH", "api/contents/notes.md", json={"path": "notes.txt"}).status_code == 200


def test_lab_loads_sandboxed_with_its_assets(alice: UserServer) -> None:
    lab = alice.client.open_server()
    assert lab.status_code == 200
    policy = lab.headers["Content-Security-Policy"]
    assert "sandbox allow-scripts allow-same-origin" in policy
    assert "allow-downloads" not in policy
    api = alice.client.server_api
    for path in (
        "lab/extensions/@jupyterhub/jupyter-server-proxy/package.json",
        "lab/api/themes/@jupyterlab/theme-light-extension/index.css",
        "kernelspecs/python3/logo-64x64.png",
        "api/kernelspecs",
        "lab/api/settings/@jupyterlab/notebook-extension:tracker",
        "api/config/jupyterlabapputilsextensionannouncements",
        "api/nbconvert",
        "api/status",
    ):
        response = api("GET", path)
        assert response.status_code == 200, (path, response.status_code, response.text[:200])
        assert GUARD_HEADER not in response.headers


def test_terminal_works_when_the_policy_allows_it(alice: UserServer) -> None:
    assert "kumo-42" in terminal_output(alice.client, "echo kumo-$((6*7))", "kumo-42")


# -- tokens ------------------------------------------------------------------------------


def test_tokens_reach_the_server_but_not_the_token_api(alice: UserServer) -> None:
    token = {"Authorization": f"token {alice.token}"}
    notes = requests.get(
        f"{alice.hub.url}/user/alice/api/contents/notes.txt", headers=token, timeout=30
    )
    assert notes.status_code == 200  # the token is valid; the corpus' refusals are the guard's
    me = alice.client.api("GET", "/user").json()
    assert not [scope for scope in me["scopes"] if scope.startswith("tokens")]
    assert alice.client.api("POST", "/users/alice/tokens", json={}).status_code == 403
    page = alice.client.session.get(f"{alice.hub.url}/hub/token", timeout=30)
    assert page.status_code == 200


# -- switching the guard off ---------------------------------------------------------------

GUARD_OFF_JSON = {
    "ServerApp": {
        "jpserver_extensions": {"kumohub.extensions.guard": False},
        "contents_manager_class": (
            "jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager"
        ),
        "allow_unauthenticated_access": True,
    },
    "ContentsManager": {"files_handler_class": "jupyter_server.files.handlers.FilesHandler"},
}
SHADOW_GUARD = """
def _jupyter_server_extension_points():
    return [{"module": "kumohub.extensions.guard"}]

def _load_jupyter_server_extension(serverapp):
    pass
"""


def plant_switches(home: Path) -> None:
    """Everything a user could write to switch the guard off at the next start."""
    for folder in (home / ".jupyter", home / ".local" / "etc" / "jupyter"):
        (folder / "jupyter_server_config.d").mkdir(parents=True, exist_ok=True)
        (folder / "jupyter_server_config.json").write_text(json.dumps(GUARD_OFF_JSON))
        (folder / "jupyter_server_config.d" / "zz-off.json").write_text(json.dumps(GUARD_OFF_JSON))
    (home / ".jupyter" / "jupyter_server_config.py").write_text(
        "c.ServerApp.jpserver_extensions = {'kumohub.extensions.guard': False}\n"
        "c.ServerApp.contents_manager_class = "
        "'jupyter_server.services.contents.largefilemanager.AsyncLargeFileManager'\n"
    )
    site = home / ".local" / "lib" / "python3.11" / "site-packages"
    guard = site / "kumohub" / "extensions" / "guard"
    guard.mkdir(parents=True, exist_ok=True)
    (site / "kumohub" / "__init__.py").write_text("")
    (site / "kumohub" / "extensions" / "__init__.py").write_text("")
    (guard / "__init__.py").write_text(SHADOW_GUARD)
    (guard / "contents.py").write_text(
        "from jupyter_server.services.contents.largefilemanager import "
        "AsyncLargeFileManager as GuardedContentsManager\n"
    )
    (site / "usercustomize.py").write_text(
        "import os\nos.environ['KUMOHUB_SERVER_SETTINGS'] = ''\n"
    )
    (site / "kumohub-off.pth").write_text(f"import sys; sys.path.insert(0, {str(site)!r})\n")


def server_command_lines(home: Path) -> list[list[str]]:
    """Command lines of the user servers running with `home` (other hubs may run a bob too)."""
    found = []
    for pid in server_processes("bob"):
        with contextlib.suppress(OSError):
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
            if f"HOME={home}".encode() in environ:
                found.append(Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0"))
    return found


def assert_guarded(client: HubClient, hub_url: str) -> None:
    for path in ("files/data.csv", "api/contents/data.csv", "nbconvert/html/report.ipynb"):
        raw_path = client.server_prefix() + path
        response = raw_request(hub_url, raw_path, headers=session_headers(client, raw_path))
        assert response.status == 403 and response.header(GUARD_HEADER), (path, response)
        assert leak_in(response.body) is None


ROGUE_SERVER = """
import subprocess, sys, os
env = {{k: v for k, v in os.environ.items() if not k.startswith(('JUPYTERHUB', 'KUMOHUB'))}}
env.pop('PYTHONNOUSERSITE', None)
rogue = subprocess.Popen(
    [os.path.join(os.path.dirname(sys.executable), 'jupyter-server'), '--allow-root',
     '--no-browser', '--ip=127.0.0.1', '--port={port}', '--IdentityProvider.token=rogue',
     '--ServerApp.root_dir=.'],
    env=env, stdout=open('rogue.log', 'wb'), stderr=subprocess.STDOUT)
print(rogue.pid)
"""


def test_user_config_site_packages_and_restarts_do_not_switch_it_off(
    guard_hub: RunningHub,
) -> None:
    bob = signed_in(guard_hub, "bob")
    home = guard_hub.state / "home" / "bob"
    home.mkdir(parents=True, exist_ok=True)
    plant_switches(home)
    (home / "data.csv").write_text(csv_text())
    (home / "report.ipynb").write_text(
        json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5})
    )
    start_server(bob)
    assert_guarded(bob, guard_hub.url)

    # Restarted by the hub, with everything still planted.
    bob.stop()
    bob.wait_stopped()
    start_server(bob)
    assert_guarded(bob, guard_hub.url)
    [cmdline] = server_command_lines(home)
    assert "--ServerApp.contents_manager_class=" + GUARDED_CONTENTS_MANAGER in cmdline

    # A server of their own, without the guard, reached through the proxies.
    port = free_port()
    with kernel(bob) as session:
        session.run(ROGUE_SERVER.format(port=port))

        def rogue_serves_data() -> bool:
            try:
                url = f"http://127.0.0.1:{port}/files/data.csv?token=rogue"
                return SENTINEL in requests.get(url, timeout=2).text
            except requests.RequestException:
                return False

        try:
            wait_until(rogue_serves_data, timeout=90, what="the user's own jupyter server")
        except TimeoutError:
            raise AssertionError((home / "rogue.log").read_text()[-3000:]) from None
        for path in (
            f"proxy/{port}/files/data.csv?token=rogue",
            f"proxy/absolute/{port}/files/data.csv?token=rogue",
            f"proxy/localhost:{port}/files/data.csv?token=rogue",
            f"vscode/proxy/{port}/files/data.csv?token=rogue",
        ):
            raw_path = bob.server_prefix() + path
            response = raw_request(guard_hub.url, raw_path, headers=session_headers(bob, raw_path))
            assert response.status == 403 and response.header(GUARD_HEADER), path
            assert leak_in(response.body) is None
    bob.stop()
    bob.wait_stopped()


def test_terminals_follow_the_policy(tmp_path: Path) -> None:
    with start_hub(tmp_path, {"guard": {"terminals": False}}) as hub:
        client = signed_in(hub, "alice")
        start_server(client)
        created = client.server_api("POST", "api/terminals")
        assert created.status_code in (403, 404)
        assert client.server_api("GET", "api/terminals").status_code in (403, 404)
        notes = client.server_api("GET", "api/status")
        assert notes.status_code == 200
        client.stop()
        client.wait_stopped()


# -- the guard's anchor, without the hub ---------------------------------------------------


@contextlib.contextmanager
def plain_server(folder: Path, env: dict[str, str]) -> Iterator[str]:
    """A jupyter server started with the spawner's guard arguments, outside any hub."""
    port = free_port()
    home = folder / "home"
    home.mkdir(parents=True, exist_ok=True)
    command = [
        str(Path(sys.executable).parent / "jupyter-server"),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        "--IdentityProvider.token=plain",
        f"--ServerApp.root_dir={home}",
        *download_guard_args(GuardPolicy()),
    ]
    if os.geteuid() == 0:
        command.append("--allow-root")
    full_env = {**os.environ, "HOME": str(home), **env}
    process = start_process(command, log_path=folder / "server.log", env=full_env, cwd=home)
    url = f"http://127.0.0.1:{port}"
    try:

        def up() -> bool:
            if process.poll() is not None:
                raise RuntimeError((folder / "server.log").read_text()[-3000:])
            try:
                return requests.get(f"{url}/api", timeout=2).status_code in (200, 403)
            except requests.RequestException:
                return False

        wait_until(up, timeout=90, what="the server")
        yield url
    finally:
        stop_process_group(process)


def test_the_contents_manager_brings_the_guard_whatever_the_config_says(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    (config / "jupyter_server_config.json").write_text(json.dumps(GUARD_OFF_JSON))
    with plain_server(tmp_path, {"JUPYTER_CONFIG_DIR": str(config)}) as url:
        (tmp_path / "home" / "data.csv").write_text(csv_text())
        token = {"Authorization": "token plain"}
        response = requests.get(f"{url}/files/data.csv", headers=token, timeout=30)
        assert response.status_code == 403 and response.headers.get(GUARD_HEADER)
        assert leak_in(response.content) is None
        assert requests.get(f"{url}/api/status", headers=token, timeout=30).status_code == 200


def test_a_guard_that_cannot_be_built_refuses_everything(tmp_path: Path) -> None:
    broken = {"KUMOHUB_SERVER_SETTINGS": json.dumps({"guard": {"content_max_bytes": -1}})}
    with plain_server(tmp_path, broken) as url:
        token = {"Authorization": "token plain"}
        for path in ("api/status", "api/contents", "lab"):
            response = requests.get(f"{url}/{path}", headers=token, timeout=30)
            assert response.status_code == 403, path
            assert response.headers.get(GUARD_HEADER) == "blocked; class=guard-failure"
    assert "download guard could not be built" in (tmp_path / "server.log").read_text()


def test_a_malformed_policy_stops_the_hub_naming_the_field(tmp_path: Path) -> None:
    bad = {"guard": {"content_extensions": ["csv"], "proxied_servers": ["files"]}}
    with pytest.raises(RuntimeError) as failure, start_hub(tmp_path, bad):
        pass
    message = str(failure.value)
    assert "guard.content_extensions[0]: must be a lowercase file extension" in message
    assert "guard.proxied_servers[0]: 'files' is a route of the user server" in message
    assert "Traceback" not in message


def test_files_planted_where_the_data_dir_is_searched_are_refused(tmp_path: Path) -> None:
    """Without disable_user_config the user's data dir is searched; the guard still refuses.

    The hub keeps the data dir out of the server's search paths, so in the corpus these
    requests find nothing; here a plain server searches it, as a misconfigured image would.
    """
    home = tmp_path / "home"
    (tmp_path / "team").mkdir()
    home.mkdir()
    (home / "team").symlink_to(tmp_path / "team", target_is_directory=True)
    plant_data(home, tmp_path / "outside")
    with plain_server(tmp_path, {}) as url:
        token = {"Authorization": "token plain"}
        listed = requests.get(f"{url}/api/kernelspecs", headers=token, timeout=30).json()
        assert "evil" in listed["kernelspecs"]  # the data dir really is searched
        for path in (
            "lab/extensions/evil/static/remoteEntry.js",
            "lab/extensions/evil/package.json",
            "lab/api/themes/evil/index.css",
            "kernelspecs/evil/logo-64x64.png",
        ):
            response = requests.get(f"{url}/{path}", headers=token, timeout=30)
            assert response.status_code == 403 and response.headers.get(GUARD_HEADER), path
            assert leak_in(response.content) is None
        logo = requests.get(f"{url}/kernelspecs/python3/logo-64x64.png", headers=token, timeout=30)
        assert logo.status_code == 200 and logo.content.startswith(b"\x89PNG")
