"""Benchmark: what the download guard costs on the routes a user hits all the time.

Two jupyter servers run side by side on loopback, the same in everything but the guard:
  baseline   jupyter-server with its default contents manager
  guarded    the same with GuardedContentsManager, which loads the download guard (the
             router rule, the contents policy, the CSP and echo-store transforms)
Both serve the same folder and the same notebook (~200 KB, with outputs). Rounds alternate
between the two servers so drift on a shared machine hits both alike. Each round keeps a
few persistent connections busy for a fixed time and counts completed requests.

Two throughputs per server: requests per wall-clock second, and requests per second of the
server process's own CPU time (user + system, from /proc). On a machine other work shares,
the wall-clock figure swings with the neighbours' load; the CPU-time figure measures what
each request costs the server, which is what the guard adds to.

Goal: guarded/baseline >= 0.95 on GET /api/contents/<notebook> and GET /api/status.
Prints medians and ratios; asserts nothing.

    python bench/guard_overhead.py [--rounds 7] [--seconds 3] [--connections 4]
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import secrets
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

BIN = Path(sys.executable).parent
BASE_URL = "/user/bench/"
GUARDED_CONTENTS_MANAGER = "kumohub.extensions.guard.contents.GuardedContentsManager"
ROUTES = {
    "contents": f"{BASE_URL}api/contents/analysis.ipynb?type=notebook&content=1",
    "status": f"{BASE_URL}api/status",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def write_notebook(folder: Path) -> None:
    """A notebook of the size people open: code, markdown and text outputs."""
    cells = []
    for index in range(60):
        cells.append({"cell_type": "markdown", "metadata": {}, "source": f"## Step {index}\n"})
        cells.append(
            {
                "cell_type": "code",
                "execution_count": index + 1,
                "metadata": {},
                "source": f"df.groupby('country').amount.sum().head({index})",
                "outputs": [
                    {
                        "output_type": "execute_result",
                        "execution_count": index + 1,
                        "metadata": {},
                        "data": {"text/plain": "country  amount\n" + "DE  1234.5\n" * 250},
                    }
                ],
            }
        )
    notebook = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (folder / "analysis.ipynb").write_text(json.dumps(notebook))


@contextlib.contextmanager
def server(folder: Path, token: str, guarded: bool) -> Iterator[tuple[int, int]]:
    port = free_port()
    command = [
        str(BIN / "jupyter-server"),
        "--no-browser",
        "--ip=127.0.0.1",
        f"--port={port}",
        f"--ServerApp.base_url={BASE_URL}",
        f"--ServerApp.root_dir={folder}",
        f"--IdentityProvider.token={token}",
        "--ServerApp.allow_unauthenticated_access=False",
        "--ServerApp.log_level=WARN",
    ]
    if guarded:
        command.append(f"--ServerApp.contents_manager_class={GUARDED_CONTENTS_MANAGER}")
    if os.geteuid() == 0:
        command.append("--allow-root")
    env = {**os.environ, "HOME": str(folder.parent / ("guarded" if guarded else "baseline"))}
    Path(env["HOME"]).mkdir(exist_ok=True)
    process = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                if request_once(port, token, ROUTES["status"]) == 200:
                    break
            time.sleep(0.3)
        else:
            raise RuntimeError(f"server on port {port} did not start")
        yield process.pid, port
    finally:
        os.killpg(process.pid, 15)
        process.wait(timeout=30)


def request_once(port: int, token: str, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path, headers={"Authorization": f"token {token}"})
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(
    pid: int, port: int, token: str, path: str, seconds: float, connections: int
) -> tuple[float, float]:
    """(requests per wall-clock second, requests per second of the server's CPU time)."""
    counts = [0] * connections
    errors: list[str] = []
    stop = time.monotonic() + seconds

    def worker(slot: int) -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        headers = {"Authorization": f"token {token}"}
        try:
            while time.monotonic() < stop:
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                response.read()
                if response.status != 200:
                    errors.append(f"{path}: HTTP {response.status}")
                    return
                counts[slot] += 1
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, args=(slot,)) for slot in range(connections)]
    started, cpu_before = time.monotonic(), cpu_seconds(pid)
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall, cpu = time.monotonic() - started, cpu_seconds(pid) - cpu_before
    if errors:
        raise RuntimeError(errors[0])
    return sum(counts) / wall, sum(counts) / max(cpu, 1e-3)


def folder_for_guard_work() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="kumohub-guard-work-")) / "root"
    folder.mkdir()
    write_notebook(folder)
    return folder


def guard_work_microseconds(folder: Path, repeats: int = 3000) -> dict[str, float]:
    """Microseconds the guard's own code spends per request, built as the extension builds it.

    The routes map is left empty, as it is in a server whose extension folders are all
    installed ones (the user's data dir is excluded from them by disable_user_config).
    """
    from jupyter_events import EventLogger
    from kumohub.extensions.guard.audit import AuditLog
    from kumohub.extensions.guard.content_policy import ContentPolicy
    from kumohub.extensions.guard.csp import sandbox_transform
    from kumohub.extensions.guard.decisions import RequestGuard
    from kumohub.extensions.guard.echo import echo_store_transform
    from kumohub.extensions.guard.locations import platform_locations
    from kumohub.extensions.guard.route_map import RouteMap
    from tornado.httputil import HTTPHeaders, HTTPServerRequest

    from kumohub.settings import GuardPolicy

    policy = GuardPolicy()
    root = str(folder)
    locations = platform_locations(home=str(folder.parent), root_dir=root, shared_roots=())
    guard = RequestGuard(
        base_url=BASE_URL,
        policy=policy,
        locations=locations,
        routes=RouteMap(BASE_URL, locations),
        contents=ContentPolicy.build(policy, root, ()),
        contents_root=root,
        kernelspec_folder=lambda name: None,
    )
    audit = AuditLog.attach(EventLogger(), "bench", "", None)
    transforms = [
        sandbox_transform(BASE_URL, guard.open_servers),
        echo_store_transform(BASE_URL, policy.echo_store_max_bytes, audit),
    ]
    results = {}
    for route, uri in ROUTES.items():
        request = HTTPServerRequest(method="GET", uri=uri, headers=HTTPHeaders())
        started = time.perf_counter()
        for _ in range(repeats):
            assert guard.decide("GET", request.path, request.query_arguments) is None
            headers = HTTPHeaders({"Content-Type": "application/json"})
            for transform in transforms:
                transform(request).transform_first_chunk(200, headers, b"{}", True)
        results[route] = (time.perf_counter() - started) / repeats * 1e6
    shutil.rmtree(folder.parent)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=4)
    args = parser.parse_args()

    token = secrets.token_hex(16)
    with tempfile.TemporaryDirectory(prefix="kumohub-guard-bench-") as tmp:
        folder = Path(tmp) / "root"
        folder.mkdir()
        write_notebook(folder)
        size = (folder / "analysis.ipynb").stat().st_size
        with server(folder, token, False) as baseline, server(folder, token, True) as guarded:
            servers = {"baseline": baseline, "guarded": guarded}
            wall: dict[str, dict[str, list[float]]] = {
                route: {name: [] for name in servers} for route in ROUTES
            }
            cpu: dict[str, dict[str, list[float]]] = {
                route: {name: [] for name in servers} for route in ROUTES
            }
            for route, path in ROUTES.items():
                for pid, port in servers.values():  # warm-up, not counted
                    measure(pid, port, token, path, 1.0, args.connections)
                for round_index in range(args.rounds):
                    order = list(servers.items())
                    if round_index % 2:
                        order.reverse()
                    for name, (pid, port) in order:
                        per_wall, per_cpu = measure(
                            pid, port, token, path, args.seconds, args.connections
                        )
                        wall[route][name].append(per_wall)
                        cpu[route][name].append(per_cpu)

    work = guard_work_microseconds(folder_for_guard_work())
    print(
        f"notebook: {size / 1024:.0f} KiB; {args.rounds} rounds x {args.seconds:.0f} s per "
        f"server and route; {args.connections} connections; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    header = (
        f"{'route':<9} {'measure':<21} {'baseline':>9} {'guarded':>9} {'ratio':>6} {'paired':>7}"
    )
    print(header)
    for route in ROUTES:
        for label, table in (("req/s (wall clock)", wall), ("req per server CPU-s", cpu)):
            base, guard = table[route]["baseline"], table[route]["guarded"]
            paired = statistics.median(g / b for g, b in zip(guard, base, strict=True))
            ratio = statistics.median(guard) / statistics.median(base)
            print(
                f"{route:<9} {label:<21} {statistics.median(base):>9.1f} "
                f"{statistics.median(guard):>9.1f} {ratio:>6.3f} {paired:>7.3f}"
            )
    print("guard's own work per request, timed in-process (decision + response transforms):")
    for route in ROUTES:
        server_us = 1e6 / statistics.median(cpu[route]["baseline"])
        expected = server_us / (server_us + work[route])
        print(
            f"  {route:<9} {work[route]:>7.1f} us of {server_us:>8.0f} us server CPU per "
            f"request -> expected ratio {expected:.3f}"
        )
    print("goal: guarded/baseline >= 0.95 on both routes ('paired': median of per-round ratios)")


if __name__ == "__main__":
    main()
