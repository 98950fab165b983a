"""Local mode: each user server is a process on this machine, homes are folders.

Folders under the state directory stand in for EFS: `home/<user>` is the user's home and
notebook root, `team/` is shared and linked into every home as `team`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web

from .base import ProfileSpawnerMixin
from .profiles import Selection


def local_gpu_count() -> int:
    """GPUs visible on this machine (NVIDIA device nodes)."""
    return len(list(Path("/dev").glob("nvidia[0-9]*")))


_DEADLINE_STATE_KEY = "kumohub_deadline"


class KumoLocalSpawner(ProfileSpawnerMixin, LocalProcessSpawner):
    """LocalProcessSpawner driven by KumoHub profiles, without switching system users.

    A profile's maximum age is enforced by `poll`, which JupyterHub calls every
    `poll_interval` seconds: past the deadline the server is stopped like any other exit.
    """

    _deadline: float | None = None
    _progress_events: list[dict[str, Any]]

    @property
    def state_root(self) -> Path:
        return Path(self.settings.storage.local.root)

    @property
    def home_dir(self) -> Path:
        return self.state_root / "home" / self.user.name

    @property
    def team_dir(self) -> Path:
        return self.state_root / "team"

    @classmethod
    def platform_refusal(cls, selection: Selection) -> str | None:
        """A GPU profile needs that many GPUs on this machine."""
        gpu = selection.profile.gpu
        if gpu is None:
            return None
        available = local_gpu_count()
        if available >= gpu.count:
            return None
        return (
            f"Profile {selection.profile.display_name!r} needs {gpu.count} GPU(s) and this "
            f"machine has {available}. Choose a CPU profile."
        )

    def apply_selection(self, selection: Selection) -> None:
        profile = selection.profile
        self.cpu_limit = profile.resources.cpu_limit
        self.cpu_guarantee = profile.resources.cpu_guarantee
        self.mem_limit = profile.resources.mem_limit
        self.mem_guarantee = profile.resources.mem_guarantee

    def _prepare_folders(self) -> None:
        self.home_dir.mkdir(parents=True, exist_ok=True)
        self.team_dir.mkdir(parents=True, exist_ok=True)
        link = self.home_dir / "team"
        if not link.exists() and not link.is_symlink():
            link.symlink_to(self.team_dir, target_is_directory=True)

    def _report(self, progress: int, message: str) -> None:
        self._progress_events.append({"progress": progress, "message": message})

    async def start(self) -> Any:
        if self.selection is None:
            raise web.HTTPError(400, "Invalid spawn request: no profile was selected")
        self._progress_events = []
        profile = self.selection.profile
        self._report(20, f"Preparing your home and team folders for {profile.display_name}")
        self._prepare_folders()
        self.notebook_dir = str(self.home_dir)
        self._report(50, f"Starting JupyterLab ({profile.display_name})")
        url = await super().start()
        if profile.max_age:
            self._deadline = time.time() + profile.max_age
        self._report(80, "Waiting for JupyterLab to answer")
        return url

    async def progress(self) -> AsyncIterator[dict[str, Any]]:
        """Events of the current start; JupyterHub stops reading when the spawn ends."""
        sent = 0
        while True:
            events = getattr(self, "_progress_events", [])
            while sent < len(events):
                yield events[sent]
                sent += 1
            await asyncio.sleep(0.2)

    async def poll(self) -> int | None:
        status = await super().poll()
        deadline = self._deadline
        if status is None and deadline is not None and not self.pending and time.time() >= deadline:
            self.log.info("%s reached its profile's maximum age; stopping it", self._log_name)
            self._deadline = None  # stop() polls too
            await self.stop()
            return 0
        return status

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        deadline = state.get(_DEADLINE_STATE_KEY)
        if isinstance(deadline, int | float):
            self._deadline = float(deadline)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._deadline is not None:
            state[_DEADLINE_STATE_KEY] = self._deadline
        return state

    def clear_state(self) -> None:
        super().clear_state()
        self._deadline = None

    def get_args(self) -> list[str]:
        args = super().get_args()
        if self.selection is not None:
            args += self.profile_server_args(self.selection)
        args += self.query_server_args()
        if os.geteuid() == 0:
            args.append("--allow-root")
        return args

    def make_preexec_fn(self, name: str) -> Any:
        # Every user server runs as the hub's own system user in local mode.
        home = str(self.home_dir)
        return lambda: os.chdir(home)

    def user_env(self, env: dict[str, str]) -> dict[str, str]:
        env["USER"] = self.user.name
        env["HOME"] = str(self.home_dir)
        env["SHELL"] = shutil.which("bash") or "/bin/sh"
        return env

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        # The single-user server and its kernels come from the hub's environment.
        env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
        env.update(self.hardened_env())
        env.update(self.server_settings_env(shared_roots=(str(self.team_dir.resolve()),)))
        profile = self.selection.profile if self.selection else None
        if profile is not None and profile.gpu is not None:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(str(i) for i in range(profile.gpu.count))
        else:
            env["CUDA_VISIBLE_DEVICES"] = ""
        return env

    async def _signal(self, sig: int) -> bool:
        """Signal the whole process group, so kernels and helpers stop with the server."""
        if self.pid <= 0:  # killpg(0) would signal the hub's own group
            return False
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            return False
        except PermissionError:
            return await super()._signal(sig)
        return True

    async def stop(self, now: bool = False) -> None:
        pid = self.pid  # poll() clears it once the leader has exited
        await super().stop(now=now)
        if pid > 0:
            # The leader is gone; take down anything it left in its group.
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)
