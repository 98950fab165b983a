"""Using a user's server the way JupyterLab, or a script holding the user's token, does.

Raw requests go out through `http.client`, byte for byte: `requests` (urllib3) removes dot
segments and re-encodes paths before sending, which would hide the very tricks the
download guard must withstand. Kernels and terminals are driven over their real
websockets through the hub's proxy.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import websocket

from .client import HubClient


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    def header(self, name: str) -> str:
        lowered = {key.lower(): value for key, value in self.headers.items()}
        return lowered.get(name.lower(), "")


def cookie_header(client: HubClient, path: str) -> str:
    """The cookies a browser sends with a request for `path`: per name, the longest path."""
    chosen: dict[str, Any] = {}
    for cookie in client.session.cookies:
        if not path.startswith(cookie.path):
            continue
        previous = chosen.get(cookie.name)
        if previous is None or len(cookie.path) > len(previous.path):
            chosen[cookie.name] = cookie
    return "; ".join(f"{cookie.name}={cookie.value}" for cookie in chosen.values())


def session_headers(client: HubClient, path: str) -> dict[str, str]:
    """What the browser sends with a request for `path`: its cookies and the XSRF token."""
    headers = {"Cookie": cookie_header(client, path)}
    xsrf = client.cookie("_xsrf", path)
    if xsrf:
        headers["X-XSRFToken"] = xsrf
    return headers


def raw_request(
    base_url: str,
    raw_path: str,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
) -> RawResponse:
    """Send `raw_path` (path and query, exactly as given) to `base_url`'s host."""
    url = urlparse(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.putrequest(method, raw_path, skip_accept_encoding=True)
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        if body is not None:
            connection.putheader("Content-Length", str(len(body)))
        connection.endheaders(body)
        response = connection.getresponse()
        return RawResponse(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def _ws_url(client: HubClient, path: str) -> str:
    return client.url.replace("http://", "ws://", 1) + path


class Kernel:
    """An IPython kernel in the user's server, run over its websocket like JupyterLab does."""

    def __init__(self, client: HubClient, server: str = "") -> None:
        self.client = client
        self.server = server
        response = client.server_api("POST", "api/kernels", server, json={"name": "python3"})
        response.raise_for_status()
        self.id = response.json()["id"]
        self.session = uuid.uuid4().hex
        self.socket = websocket.create_connection(
            _ws_url(
                client,
                f"{client.server_prefix(server)}api/kernels/{self.id}/channels"
                f"?session_id={self.session}",
            ),
            cookie=cookie_header(client, client.server_prefix(server)),
            origin=client.url,
            timeout=120,
        )

    def execute(self, code: str, timeout: float = 120) -> list[dict[str, Any]]:
        """Run `code`; return the iopub messages of that cell until the kernel is idle."""
        msg_id = uuid.uuid4().hex
        self.socket.send(
            json.dumps(
                {
                    "header": {
                        "msg_id": msg_id,
                        "username": self.client.user,
                        "session": self.session,
                        "msg_type": "execute_request",
                        "version": "5.3",
                    },
                    "parent_header": {},
                    "metadata": {},
                    "content": {
                        "code": code,
                        "silent": False,
                        "store_history": False,
                        "user_expressions": {},
                        "allow_stdin": False,
                        "stop_on_error": True,
                    },
                    "channel": "shell",
                    "buffers": [],
                }
            )
        )
        messages: list[dict[str, Any]] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = json.loads(self.socket.recv())
            if message.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if message["channel"] == "iopub":
                messages.append(message)
                state = message["content"].get("execution_state")
                if message["msg_type"] == "status" and state == "idle":
                    return messages
        raise TimeoutError(f"cell did not finish in {timeout}s: {code[:60]!r}")

    def run(self, code: str, timeout: float = 120) -> str:
        """Run `code` and return what it printed; fail on an exception in the cell."""
        messages = self.execute(code, timeout)
        errors = [m["content"] for m in messages if m["msg_type"] == "error"]
        if errors:
            raise AssertionError("\n".join(errors[0]["traceback"]))
        return "".join(m["content"]["text"] for m in messages if m["msg_type"] == "stream")

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.socket.close()
        self.client.server_api("DELETE", f"api/kernels/{self.id}", self.server)


@contextlib.contextmanager
def kernel(client: HubClient, server: str = "") -> Iterator[Kernel]:
    started = Kernel(client, server)
    try:
        yield started
    finally:
        started.close()


def terminal_output(client: HubClient, command: str, expect: str, server: str = "") -> str:
    """Open a terminal, type `command`, and return its output once `expect` shows up."""
    response = client.server_api("POST", "api/terminals", server)
    response.raise_for_status()
    name = response.json()["name"]
    socket = websocket.create_connection(
        _ws_url(client, f"{client.server_prefix(server)}terminals/websocket/{name}"),
        cookie=cookie_header(client, client.server_prefix(server)),
        origin=client.url,
        timeout=60,
    )
    output = ""
    try:
        socket.send(json.dumps(["stdin", command + "\r"]))
        deadline = time.monotonic() + 60
        while expect not in output and time.monotonic() < deadline:
            kind, *payload = json.loads(socket.recv())
            if kind == "stdout":
                output += payload[0]
        return output
    finally:
        socket.close()
        client.server_api("DELETE", f"api/terminals/{name}", server)
