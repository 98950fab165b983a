"""Start real processes for tests and always stop their whole process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path


def start_process(
    command: list[str],
    *,
    log_path: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in its own session, output to `log_path`."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = log_path.open("ab")
    return subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
    )


def stop_process_group(proc: subprocess.Popen[bytes], timeout: float = 15) -> None:
    """SIGTERM the group, wait, then SIGKILL whatever is left (servers, kernels, helpers)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def wait_until(
    check: Callable[[], bool], *, timeout: float, interval: float = 0.25, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")


def server_processes(user: str, server: str = "", home: Path | None = None) -> list[int]:
    """Pids of single-user server processes the hub started for `user` (any kernel excluded).

    `home`: only servers with this HOME (local mode: `<state>/home/<user>`), because other
    hubs on the same machine may run servers for a user of the same name.
    """
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            environ = (proc / "environ").read_bytes().split(b"\0")
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if (
            f"JUPYTERHUB_USER={user}".encode() in environ
            and f"JUPYTERHUB_SERVER_NAME={server}".encode() in environ
            and b"jupyterhub-singleuser" in cmdline
            and (home is None or f"HOME={home}".encode() in environ)
        ):
            found.append(int(proc.name))
    return found
