"""Kubernetes mode: KubeSpawner driven by the KumoHub profile model.

`KumoKubeSpawner` stays small: it validates every spawn through `ProfileSpawnerMixin`,
applies the four override functions of `spawner/pod_overrides.py`, gives the server its
hardened environment and settings, and checks names before the API server sees them
(`spawner/manifest_checks.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes_asyncio.client import V1PersistentVolumeClaim, V1Pod
from kubespawner import KubeSpawner
from tornado import web
from traitlets import default

from kumohub.settings import Settings

from .base import ProfileSpawnerMixin
from .manifest_checks import InvalidManifestError, api_form, manifest_problems
from .pod_overrides import (
    AWS_CREDENTIAL_VARIABLES,
    MERGED_LISTS,
    MERGED_MAPPINGS,
    SINGLEUSER_COMMAND,
    hardening_overrides,
    identity_overrides,
    merged_list,
    profile_overrides,
    storage_overrides,
)
from .profiles import Selection


class KumoKubeSpawner(ProfileSpawnerMixin, KubeSpawner):
    """KubeSpawner whose pods come from KumoHub profiles, storage and hardening settings."""

    @default("cmd")
    def _cmd_default(self) -> list[str]:
        # An explicit command: with the image's own one, KubeSpawner drops every flag
        # (idle timeout, download guard, query extension).
        return list(SINGLEUSER_COMMAND)

    def apply_selection(self, selection: Selection) -> None:
        settings: Settings = self.settings
        groups = self.user_groups()
        for overrides in (
            profile_overrides(selection),
            storage_overrides(settings.storage, selection),
            hardening_overrides(settings.kubernetes),
            identity_overrides(self.user.name, groups, selection, settings.kubernetes),
        ):
            self._apply_traits(overrides)
        if not self._pvc_exists:
            # The claim name depends on the username only; a name remembered in the
            # spawner's state (an older template) is kept so no home is ever detached.
            self.pvc_name = self._expand_user_properties(self.pvc_name_template)

    def _apply_traits(self, overrides: Mapping[str, Any]) -> None:
        for name, value in overrides.items():
            if name in MERGED_MAPPINGS:
                value = {**(getattr(self, name) or {}), **value}
            elif name in MERGED_LISTS:
                value = merged_list(getattr(self, name), value)
            setattr(self, name, value)

    def start(self) -> Any:
        if self.selection is None:
            # Nothing reaches the cluster unless apply_user_options accepted the request.
            raise web.HTTPError(400, "Invalid spawn request: no profile was selected")
        return super().start()

    async def load_user_options(self) -> None:
        """Profiles were applied (and validated) by `apply_user_options` already."""

    def shared_roots(self) -> tuple[str, ...]:
        """Folders outside the home that symlinks in the home may point into."""
        storage = self.settings.storage
        shared = ([storage.team] if storage.team else []) + list(storage.datasets)
        return tuple(str(volume.mount_path) for volume in shared)

    def get_args(self) -> list[str]:
        args = super().get_args()
        if self.selection is not None:
            args += self.profile_server_args(self.selection)
        return args + self.query_server_args()

    def get_env(self) -> dict[str, str]:
        env = super().get_env()
        for name in AWS_CREDENTIAL_VARIABLES:
            if env.pop(name, None) is not None:
                self.log.warning(
                    "Not passing %s to %s: AWS access is IRSA only", name, self._log_name
                )
        env.update(self.hardened_env())
        env.update(self.server_settings_env(shared_roots=self.shared_roots()))
        return env

    async def _start(self) -> Any:
        # KubeSpawner creates the home claim before it builds the pod: build (and check) the
        # pod first, so a pod the API server would refuse leaves no new claim behind.
        await self.get_pod_manifest()
        return await super()._start()

    async def get_pod_manifest(self) -> V1Pod:
        pod = await super().get_pod_manifest()
        problems = manifest_problems(api_form(pod))
        if problems:
            raise InvalidManifestError("pod", problems)
        return pod

    def get_pvc_manifest(self) -> V1PersistentVolumeClaim:
        pvc = super().get_pvc_manifest()
        problems = manifest_problems(api_form(pvc))
        if problems:
            raise InvalidManifestError("persistent volume claim", problems)
        return pvc
