"""Local mode: each user server is a process on this machine, homes are folders.

Folders under the state directory stand in for EFS: `home/<user>` is the user's home and
notebook root, `team/` is shared and linked into every home as `team`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from jupyterhub.spawner import LocalProcessSpawner
from tornado import web

from .base import ProfileSpawnerMixin
from .profiles import Selection


def local_gpu_count() -> int:
    """GPUs visible on this machine (NVIDIA device nodes)."""
    return len(list(Path("/dev").glob("nvidia[0-9]*")))


class KumoLocalSpawner(ProfileSpawnerMixin, LocalProcessSpawner):
    """LocalProcessSpawner driven by KumoHub profiles, without switching system users."""

    @property
    def state_root(self) -> Path:
        return Path(self.settings.storage.local.root)

    @property
    def home_dir(self) -> Path:
        return self.state_root / "home" / self.user.name

    @property
    def team_dir(self) -> Path:
        return self.state_root / "team"

    def apply_selection(self, selection: Selection) -> None:
        profile = selection.profile
        if profile.gpu is not None:
            available = local_gpu_count()
            if available < profile.gpu.count:
                raise web.HTTPError(
                    400,
                    f"Profile {profile.display_name!r} needs {profile.gpu.count} GPU(s); "
                    f"this machine has {available}. Choose a CPU profile.",
                )
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

    async def start(self) -> Any:
        if self.selection is None:
            raise web.HTTPError(400, "Invalid spawn request: no profile was selected")
        self._prepare_folders()
        self.notebook_dir = str(self.home_dir)
        return await super().start()

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
