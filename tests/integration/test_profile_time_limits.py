"""A profile's idle timeout and maximum age really stop servers (local mode, real hub).

The idle timeout is enforced by the user server itself (flags from the spawner), the
maximum age by the spawner's poll; in both cases the hub notices the server is gone the
way it notices any exit. Both servers run at the same time to keep the test short: the
server checks for inactivity once a minute, the hub polls every 30 seconds.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from tests.support.client import HubClient
from tests.support.hub import LOCAL_SETTINGS, USER_PASSWORD, start_hub
from tests.support.processes import server_processes, wait_until


def short_lived_profiles() -> list[dict[str, Any]]:
    profiles = copy.deepcopy(yaml.safe_load(LOCAL_SETTINGS.read_text())["profiles"])
    small = next(p for p in profiles if p["slug"] == "cpu-small")
    small["idle_timeout"] = 4
    large = next(p for p in profiles if p["slug"] == "cpu-large")
    large["max_age"] = 8
    return profiles


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_idle_timeout_and_max_age_stop_the_server(tmp_path: Path) -> None:
    overrides = {"profiles": short_lived_profiles(), "culling": {"enabled": False}}
    with start_hub(tmp_path, overrides) as hub:
        alice = HubClient(hub.url)
        assert alice.login("alice", USER_PASSWORD).status_code == 302
        assert alice.api_spawn({"profile": "cpu-small"}).status_code in (201, 202)
        assert alice.api_spawn({"profile": "cpu-large"}, server="short").status_code in (201, 202)
        alice.wait_ready()
        alice.wait_ready("short")
        home = hub.state / "home" / "alice"
        [idle_pid] = server_processes("alice", "", home=home)
        [aged_pid] = server_processes("alice", "short", home=home)

        # Maximum age: stopped by the hub at its first poll after 8 s.
        wait_until(lambda: alice.server_model("short") is None, timeout=90, what="max age")
        wait_until(lambda: not alive(aged_pid), timeout=20, what="the aged server to exit")
        assert "reached its profile's maximum age" in hub.log()

        # Idle timeout: the server exits at its first inactivity check (every minute).
        wait_until(lambda: not alive(idle_pid), timeout=120, what="the idle server to exit")
        wait_until(lambda: alice.server_model() is None, timeout=60, what="the hub to notice")
        assert "No kernels for" in hub.log() and "shutting down" in hub.log()
