"""A real KumoHub (JupyterHub + configurable-http-proxy) started the way the README starts it.

`start_hub` writes a settings file into a temporary folder (the repo's local example with
test overrides merged in), runs `kumohub-local` on free loopback ports and stops the
whole process tree at the end, also when the test fails.
"""

from __future__ import annotations

import contextlib
import copy
import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
import yaml

from .client import HubClient
from .ports import free_port
from .processes import start_process, stop_process_group, wait_until

REPO = Path(__file__).resolve().parents[2]
LOCAL_SETTINGS = REPO / "hub_config" / "local-settings.yaml"
LAUNCHER = Path(sys.executable).parent / "kumohub-local"
USER_PASSWORD = "test-user-password"
ADMIN_PASSWORD = "test-admin-password-that-is-long-enough"


def _same_kind(base: Mapping[str, Any], override: Mapping[str, Any]) -> bool:
    """A section with another `kind` (e.g. auth: oidc over shared-password) replaces, not merges."""
    return override.get("kind", base.get("kind")) == base.get("kind")


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = copy.deepcopy(dict(base))
    for key, value in override.items():
        previous = merged.get(key)
        if (
            isinstance(value, Mapping)
            and isinstance(previous, Mapping)
            and _same_kind(previous, value)
        ):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def write_settings(folder: Path, overrides: Mapping[str, Any] | None = None) -> Path:
    """The local example settings with `overrides`, state kept inside `folder`."""
    data = yaml.safe_load(LOCAL_SETTINGS.read_text())
    data = deep_merge(data, {"storage": {"local": {"root": str(folder / "state")}}})
    data = deep_merge(data, overrides or {})
    path = folder / "settings.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


@dataclass
class RunningHub:
    url: str
    folder: Path
    settings_path: Path
    log_path: Path
    env: dict[str, str] = field(repr=False)

    @property
    def state(self) -> Path:
        return self.folder / "state"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def client(self) -> HubClient:
        return HubClient(self.url)


def hub_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "KUMOHUB_USER_PASSWORD": USER_PASSWORD,
            "KUMOHUB_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PYTHONUNBUFFERED": "1",
        }
    )
    env.update(extra or {})
    return env


@contextlib.contextmanager
def start_hub(
    folder: Path,
    overrides: Mapping[str, Any] | None = None,
    *,
    env: Mapping[str, str] | None = None,
    settings_path: Path | None = None,
) -> Iterator[RunningHub]:
    """Run KumoHub in local mode on free ports until the block ends."""
    folder.mkdir(parents=True, exist_ok=True)
    default_url = f"http://127.0.0.1:{free_port()}"
    overrides = deep_merge({"hub": {"bind_url": default_url}}, overrides or {})
    # A test may choose the URL itself (e.g. to register it with an identity provider first).
    url = str(overrides["hub"]["bind_url"]).rstrip("/")
    path = settings_path or write_settings(folder, overrides)
    command = [
        str(LAUNCHER),
        "--settings",
        str(path),
        f"--JupyterHub.hub_port={free_port()}",
        f"--ConfigurableHTTPProxy.api_url=http://127.0.0.1:{free_port()}",
    ]
    log_path = folder / "hub.log"
    full_env = hub_env(env)
    proc = start_process(command, log_path=log_path, env=full_env, cwd=folder)
    hub = RunningHub(url, folder, path, log_path, full_env)
    try:

        def healthy() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"hub exited with {proc.returncode}:\n{hub.log()[-4000:]}")
            with contextlib.suppress(requests.RequestException):
                return requests.get(f"{hub.url}/hub/health", timeout=2).status_code == 200
            return False

        wait_until(healthy, timeout=90, what="the hub to answer /hub/health")
        yield hub
    finally:
        stop_process_group(proc, timeout=30)
