"""Looking at a user's code-server from outside: its processes, sockets and raw HTTP routes.

Raw requests go through `http.client` because requests/urllib3 normalize paths (dot segments,
percent-encoded unreserved characters) before sending, which would hide the tricks a download
guard must withstand.
"""

from __future__ import annotations

import asyncio
import http.client
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from tornado.httpclient import HTTPRequest
from tornado.websocket import websocket_connect

from .client import HubClient

CODE_SERVER_MARK = b"code-server"


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes


def _cookie_header(client: HubClient) -> str:
    return "; ".join(f"{c.name}={c.value}" for c in client.session.cookies)


def raw_request(
    client: HubClient, raw_path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> RawResponse:
    """Send `raw_path` byte for byte to the hub's proxy, with the browser session's cookies."""
    url = urlparse(client.url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        connection.putrequest(method, raw_path, skip_accept_encoding=True)
        connection.putheader("Cookie", _cookie_header(client))
        for name, value in (headers or {}).items():
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read()
        return RawResponse(response.status, dict(response.getheaders()), body)
    finally:
        connection.close()


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.unix_path)


def unix_socket_get(socket_path: str, raw_path: str) -> RawResponse:
    """GET straight from code-server's socket, bypassing every proxy (what the guard stands in)."""
    connection = _UnixHTTPConnection(socket_path)
    try:
        connection.request("GET", raw_path)
        response = connection.getresponse()
        return RawResponse(response.status, dict(response.getheaders()), response.read())
    finally:
        connection.close()


def websocket_upgrade(client: HubClient, path: str) -> int:
    """Open a websocket through the hub with the session's cookies; returns the HTTP status."""
    ws_url = client.url.replace("http://", "ws://", 1) + path
    request = HTTPRequest(
        ws_url,
        headers={"Cookie": _cookie_header(client), "Origin": client.url},
        request_timeout=60,
    )

    async def connect() -> int:
        connection = await websocket_connect(request)
        try:
            return 101
        finally:
            connection.close()

    return asyncio.run(connect())


# -- processes --------------------------------------------------------------------------------


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""


def _environ_has(pid: int, entry: str) -> bool:
    return entry.encode() in _read(Path(f"/proc/{pid}/environ")).split(b"\0")


def _pids_with(home: Path, mark: bytes) -> list[int]:
    # HOME tells one hub's user apart from the same user name in another hub on this machine.
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        if mark in _read(proc / "cmdline") and _environ_has(int(proc.name), f"HOME={home}"):
            found.append(int(proc.name))
    return sorted(found)


def code_server_pids(home: Path) -> list[int]:
    """Live code-server processes (server, workers, extension and pty hosts) for one home."""
    return _pids_with(home, CODE_SERVER_MARK)


def user_server_pids(home: Path) -> list[int]:
    """The single-user server process(es) running with this home."""
    return _pids_with(home, b"jupyterhub-singleuser")


def command_line(pid: int) -> list[str]:
    return [part.decode() for part in _read(Path(f"/proc/{pid}/cmdline")).split(b"\0") if part]


def process_group(pid: int) -> int:
    stat = _read(Path(f"/proc/{pid}/stat")).decode()
    # Fields after the parenthesised command name: state ppid pgrp ...
    return int(stat.rsplit(")", 1)[1].split()[2])


def alive(pid: int) -> bool:
    stat = _read(Path(f"/proc/{pid}/stat")).decode()
    return bool(stat) and stat.rsplit(")", 1)[1].split()[0] != "Z"


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    fd_dir = Path(f"/proc/{pid}/fd")
    try:
        links = list(fd_dir.iterdir())
    except OSError:
        return inodes
    for link in links:
        try:
            target = link.readlink().as_posix()
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def listening_tcp_inodes() -> set[int]:
    """Inodes of TCP sockets in LISTEN state, IPv4 and IPv6 (/proc/net/tcp{,6})."""
    listening = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                listening.add(int(fields[9]))
    return listening


def listening_unix_sockets() -> dict[int, str]:
    """Inode -> path of bound, listening unix sockets (/proc/net/unix)."""
    sockets = {}
    for line in Path("/proc/net/unix").read_text().splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and int(fields[3], 16) & 0x10000:  # __SO_ACCEPTCON: listening
            sockets[int(fields[6])] = fields[7]
    return sockets
