"""The download guard's bypass corpus: every line of the threat map, tried for real.

Each attempt names the threat-map line it covers, what it sends (a raw path below the
user's server, placeholders filled in at run time) and how it must end:

- BLOCKED: the guard's own 403 (its `X-KumoHub-Guard` header is on the response);
- GUARDED: the contents manager's part of the guard refused it (403 with the guard's message);
- REFUSED: the hub refused it (any 4xx);
- ABSENT: the route does not exist in this server (a 404, or the guard's 403);
- ELSEWHERE: the hub's proxy resolves the path out of the user's server, so it never gets
  there (anything but a success).

Whatever the outcome, the response body must not contain the sentinel string written into
the user's data files, in clear or base64 (see test_download_guard.leak_in).

Placeholders: ${home} (the absolute home folder), ${http_port} (a `python -m http.server`
the user started from a kernel, serving the home folder), ${server_port} (the user
server's own port, for re-entry), ${vscode_data} (code-server's data folder in the home).
"""

from __future__ import annotations

from dataclasses import dataclass

from nbconvert.exporters import get_export_names

THREATS = {
    "files": "/files/<path>: attachment downloads, HEAD and Range",
    "contents": "/api/contents: bounded by file type, size, base64 and the bytes themselves",
    "nbconvert": "/nbconvert/<format>/<path> exports (every format)",
    "view": "/view/<path> pages",
    "kernelspecs": "/kernelspecs/<kernel>/<file>, a kernelspec in the user's data dir included",
    "lab-static": "/lab/extensions and /lab/api/themes files planted in the user's data dir",
    "echo-stores": "/api/config, /lab/api/settings, /lab/api/workspaces",
    "collaboration": "real-time collaboration session and rooms",
    "proxy": "/proxy/<port>, /proxy/absolute/<port>, /proxy/<host>:<port>",
    "code-server": "code-server's /proxy, /absproxy and /vscode-remote-resource behind /vscode/",
    "encoding": "%2e%2e, %2f inside a segment, double encoding, backslashes, case",
    "dot-segments": "`..` segments",
    "absolute": "absolute in-root paths",
    "slashes": "trailing slashes and double slashes",
    "repeated-args": "repeated query arguments (last wins)",
    "range-head": "Range and HEAD requests",
    "copy-rename": "copy or rename to dodge a name rule",
    "symlinks": "symlinks onto data files or out of the root",
    "re-entry": "re-entering the server, or a server the user started, through a proxy",
    "token": "the user's API token with plain HTTP and curl, tokens minted at /hub/token",
}

BLOCKED = "blocked"
GUARDED = "guarded"
REFUSED = "refused"
ABSENT = "absent"
ELSEWHERE = "elsewhere"

SESSION = "session"  # the browser's cookies (and XSRF token)
TOKEN = "token"  # Authorization: token $JUPYTERHUB_API_TOKEN, no cookies
TOKEN_QUERY = "token-query"  # ?token=$JUPYTERHUB_API_TOKEN, no cookies
CURL = "curl"  # the curl binary with the token header and --path-as-is


@dataclass(frozen=True)
class Attempt:
    threat: str
    path: str
    method: str = "GET"
    outcome: str = BLOCKED
    via: str = SESSION
    headers: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    hub: bool = False
    """`path` is below the hub's root instead of the user's server."""

    @property
    def id(self) -> str:
        body = f":{self.body}" if self.body and self.body != "{}" else ""
        return f"{self.threat}:{self.method}:{self.via}:{self.path}{body}"[:140]


RANGE = (("Range", "bytes=0-200"),)
WEBSOCKET = (
    ("Connection", "Upgrade"),
    ("Upgrade", "websocket"),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Key", "a3Vtb2h1Yi1ndWFyZC1rZXk="),
)
JSON = (("Content-Type", "application/json"),)

NBCONVERT = [Attempt("nbconvert", f"nbconvert/{name}/report.ipynb") for name in get_export_names()]

CORPUS: list[Attempt] = [
    # /files/
    Attempt("files", "files/data.csv"),
    Attempt("files", "files/data.csv?download=1"),
    Attempt("files", "files/secret.parquet"),
    Attempt("files", "files/report.ipynb"),
    Attempt("files", "files/team/data.csv"),
    Attempt("files", "files/data.csv", method="POST", body="{}", headers=JSON),
    Attempt("files", "files/data.csv", method="OPTIONS"),
    Attempt("files", "files/data.csv?websocket", headers=WEBSOCKET),
    Attempt("range-head", "files/data.csv", method="HEAD"),
    Attempt("range-head", "files/data.csv", headers=RANGE),
    Attempt("range-head", "files/data.csv?download=1", headers=(("Range", "bytes=5-"),)),
    Attempt("range-head", "nbconvert/html/report.ipynb", method="HEAD"),
    Attempt("range-head", "api/contents/data.csv", headers=RANGE),
    # /api/contents, bounded
    Attempt("contents", "api/contents/data.csv"),
    Attempt("contents", "api/contents/data.csv?type=file&format=text"),
    Attempt("contents", "api/contents/secret.parquet?type=file&format=base64"),
    Attempt("contents", "api/contents/secret.parquet"),
    Attempt("contents", "api/contents/report.ipynb?type=file&format=base64"),
    Attempt("contents", "api/contents/disguised.py"),
    Attempt("contents", "api/contents/disguised.py?type=file&format=text"),
    Attempt("contents", "api/contents/big.txt"),
    Attempt("contents", "api/contents/team/data.csv"),
    # nbconvert, every exporter, and the POST form
    *NBCONVERT,
    Attempt("nbconvert", "nbconvert/html/report.ipynb?download=true"),
    Attempt("nbconvert", "nbconvert/script/report.ipynb?download=true", via=TOKEN),
    Attempt("nbconvert", "nbconvert/html", method="POST", body="{}", headers=JSON),
    # /view/
    Attempt("view", "view/report.ipynb"),
    Attempt("view", "view/data.csv"),
    # kernelspec folders
    Attempt("kernelspecs", "kernelspecs/evil/logo-64x64.png"),
    Attempt("kernelspecs", "kernelspecs/evil/kernel.json"),
    Attempt("kernelspecs", "kernelspecs/evil/data.csv"),
    Attempt("kernelspecs", "kernelspecs/python3/kernel.json"),
    Attempt("kernelspecs", "kernelspecs/python3/..%2f..%2f..%2f..%2f..%2f..%2f${home}/data.csv"),
    # lab static files planted in the user's data dir
    Attempt("lab-static", "lab/extensions/evil/static/remoteEntry.js", outcome=ABSENT),
    Attempt("lab-static", "lab/extensions/evil/package.json", outcome=ABSENT),
    Attempt("lab-static", "lab/api/themes/evil/index.css", outcome=ABSENT),
    Attempt("lab-static", "lab/extensions/..%2f..%2f..%2f..%2f${home}/data.csv", outcome=ABSENT),
    Attempt("lab-static", "static/lab/..%2f..%2f..%2f..%2f${home}/data.csv", outcome=ABSENT),
    # stores that echo what was saved, filled with data by a kernel
    Attempt("echo-stores", "api/config/kumo"),
    Attempt("echo-stores", "lab/api/workspaces"),
    Attempt("echo-stores", "lab/api/workspaces/bulk"),
    Attempt("echo-stores", "lab/api/settings/@jupyterlab/apputils-extension:themes"),
    # real-time collaboration is not installed: its routes must not exist
    Attempt("collaboration", "api/collaboration/session/data.csv", "PUT", ABSENT, body="{}"),
    Attempt("collaboration", "api/collaboration/room/text:file:data.csv", outcome=ABSENT),
    # jupyter-server-proxy to a server the user started from a kernel
    Attempt("proxy", "proxy/${http_port}/data.csv"),
    Attempt("proxy", "proxy/${http_port}/secret.parquet"),
    Attempt("proxy", "proxy/${http_port}/team/data.csv"),
    Attempt("proxy", "proxy/absolute/${http_port}/data.csv"),
    Attempt("proxy", "proxy/127.0.0.1:${http_port}/data.csv"),
    Attempt("proxy", "proxy/localhost:${http_port}/data.csv"),
    Attempt("proxy", "proxy/absolute/127.0.0.1:${http_port}/data.csv"),
    Attempt("proxy", "proxy/${http_port}/data.csv", method="HEAD"),
    Attempt("proxy", "proxy/${http_port}/data.csv?websocket", headers=WEBSOCKET),
    # code-server's own routes
    Attempt("code-server", "vscode/proxy/${http_port}/data.csv"),
    Attempt("code-server", "vscode/absproxy/${http_port}/data.csv"),
    Attempt("code-server", "vscode/proxy/${http_port}/data.csv?websocket", headers=WEBSOCKET),
    Attempt("code-server", "vscode/%70roxy/${http_port}/data.csv"),
    Attempt("code-server", "vscode/vscode-remote-resource?path=${home}/data.csv"),
    Attempt("code-server", "vscode/vscode-remote-resource?path=${home}/secret.parquet&tkn=0000"),
    Attempt("code-server", "vscode/stable-0000/vscode-remote-resource?path=${home}/data.csv"),
    Attempt("code-server", "vscode/vscode/vscode-remote-resource?path=${home}/data.csv"),
    Attempt("code-server", "vscode/vscode-remote-resource?path=/usr/../${home}/data.csv"),
    Attempt("code-server", "vscode/vscode-remote-resource?path=${vscode_data}/../../../data.csv"),
    # encodings
    Attempt("encoding", "%66iles/data.csv"),
    Attempt("encoding", "files%2fdata.csv"),
    Attempt("encoding", "files/%64ata.csv"),
    Attempt("encoding", "lab/%2e%2e/files/data.csv"),
    Attempt("encoding", "lab/%2E%2E/files/data.csv"),
    Attempt("encoding", "lab/%252e%252e/files/data.csv"),
    Attempt("encoding", "lab%5c..%5cfiles%5cdata.csv"),
    Attempt("encoding", "FILES/data.csv", outcome=ABSENT),
    Attempt("encoding", "api/contents/data%2Ecsv"),
    Attempt("encoding", "api/contents/sub%2f..%2fdata.csv"),
    Attempt("encoding", "api/contents/%2e%2e%2foutside%2fsecret.txt"),
    Attempt("encoding", "%70roxy/${http_port}/data.csv"),
    # `..` segments, sent as they are
    Attempt("dot-segments", "lab/../files/data.csv", via=CURL),
    Attempt("dot-segments", "api/../files/data.csv"),
    Attempt("dot-segments", "static/../nbconvert/html/report.ipynb"),
    Attempt("dot-segments", "api/contents/sub/../data.csv"),
    Attempt("dot-segments", "api/contents/../../../../../../${home}/data.csv", outcome=ELSEWHERE),
    Attempt("dot-segments", "files/../../../../../../${home}/data.csv", outcome=ELSEWHERE),
    Attempt("dot-segments", "api/contents/..%2f..%2f..%2f..%2f..%2f..%2f..%2f${home}/data.csv"),
    Attempt("dot-segments", "files/..%2f..%2f..%2f..%2f..%2f..%2f..%2f${home}/data.csv"),
    # absolute in-root paths
    Attempt("absolute", "files/${home}/data.csv"),
    Attempt("absolute", "api/contents/${home}/data.csv"),
    Attempt("absolute", "view/${home}/data.csv"),
    # slashes
    Attempt("slashes", "files/data.csv/"),
    Attempt("slashes", "/files/data.csv"),
    Attempt("slashes", "files//data.csv"),
    Attempt("slashes", "api/contents//data.csv", outcome=ABSENT),
    Attempt("slashes", "nbconvert/html//report.ipynb"),
    Attempt("slashes", "proxy/${http_port}//data.csv"),
    # repeated arguments
    Attempt("repeated-args", "api/contents/data.csv?content=0&content=1"),
    Attempt("repeated-args", "api/contents/report.ipynb?format=json&format=base64&type=file"),
    Attempt("repeated-args", "files/data.csv?download=0&download=1"),
    Attempt(
        "repeated-args",
        "vscode/vscode-remote-resource?path=/usr/share/dict&path=${home}/data.csv",
    ),
    # copy and rename (contents API); the copies that keep their type are tested on their own
    Attempt("copy-rename", "api/contents/data.csv", "PATCH", GUARDED, body='{"path": "data.py"}'),
    Attempt(
        "copy-rename", "api/contents/secret.parquet", "PATCH", GUARDED, body='{"path": "s.txt"}'
    ),
    Attempt(
        "copy-rename", "api/contents/data.csv", "PATCH", GUARDED, body='{"path": "sub/../d.md"}'
    ),
    Attempt(
        "copy-rename", "api/contents/team/data.csv", "PATCH", GUARDED, body='{"path": "t.ipynb"}'
    ),
    Attempt(
        "copy-rename", "api/contents/sub", "POST", GUARDED, body='{"copy_from": "outside.txt"}'
    ),
    # symlinks
    Attempt("symlinks", "api/contents/link_to_data.py"),
    Attempt("symlinks", "api/contents/outside.txt"),
    Attempt("symlinks", "api/contents/outdir/secret.txt"),
    Attempt("symlinks", "api/contents/outdir"),
    Attempt("symlinks", "api/contents/outdir/new.txt", "PUT", body='{"type": "file"}'),
    Attempt("symlinks", "files/link_to_data.py"),
    # re-entry into the user's own server through the proxies
    Attempt("re-entry", "proxy/${server_port}/user/${user}/files/data.csv"),
    Attempt("re-entry", "proxy/${server_port}/user/${user}/api/contents/data.csv"),
    Attempt("re-entry", "proxy/absolute/${server_port}/user/${user}/files/data.csv"),
    Attempt("re-entry", "proxy/127.0.0.1:${server_port}/user/${user}/files/data.csv"),
    Attempt("re-entry", "vscode/proxy/${server_port}/user/${user}/files/data.csv"),
    Attempt("re-entry", "vscode/absproxy/${server_port}/user/${user}/files/data.csv"),
    # the user's own token, from a script or curl on a laptop
    Attempt("token", "files/data.csv", via=TOKEN),
    Attempt("token", "files/data.csv", via=TOKEN_QUERY),
    Attempt("token", "api/contents/data.csv", via=TOKEN),
    Attempt("token", "api/contents/secret.parquet?format=base64&type=file", via=CURL),
    Attempt("token", "proxy/${http_port}/data.csv", via=TOKEN),
    Attempt("token", "proxy/${http_port}/data.csv", via=CURL),
    Attempt("token", "vscode/vscode-remote-resource?path=${home}/data.csv", via=CURL),
    Attempt("token", "files/data.csv", method="HEAD", via=CURL),
    Attempt("token", "hub/api/users/${user}/tokens", "POST", REFUSED, body="{}", hub=True),
    Attempt("token", "hub/api/users/${user}/tokens", "POST", REFUSED, TOKEN, body="{}", hub=True),
]
