"""Kubernetes mode: KubeSpawner driven by the KumoHub profile model.

`KumoKubeSpawner` stays small on purpose. Everything a pod gets from KumoHub comes from four
pure functions, each testable alone, whose results are applied as KubeSpawner traits:

- `profile_overrides`: image, CPU/memory, GPU scheduling, maximum age;
- `storage_overrides`: the home claim on EFS, the team folder, read-only datasets, /dev/shm;
- `hardening_overrides`: non-root user, no privilege escalation, no capabilities, seccomp;
- `identity_overrides`: the IRSA service account and the cost-allocation labels.

Values the chart configures (labels such as `hub.jupyter.org/network-access-hub`, extra
volumes, node selectors) are kept; KumoHub's own keys win where both set one. Names and
labels are checked against the API server's rules before a request is sent
(`manifest_problems`), so a bad template fails with a message naming the field.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from kubernetes_asyncio.client import V1PersistentVolumeClaim, V1Pod
from kubespawner import KubeSpawner
from kubespawner.slugs import is_valid_label, safe_slug
from tornado import web
from traitlets import default

from kumohub.settings import KubernetesSettings, Settings, StorageSettings, quantity_bytes
from kumohub.settings.kubernetes import (
    is_dns_label,
    is_dns_subdomain,
    is_label_key,
    is_label_value,
)
from kumohub.settings.storage import SHM_PATH

from .base import ProfileSpawnerMixin
from .profiles import Selection

SINGLEUSER_COMMAND = ("jupyterhub-singleuser",)
GPU_RESOURCE = "nvidia.com/gpu"
USER_LABEL = "kumohub.io/user"
TEAM_LABEL = "kumohub.io/team"
PROFILE_LABEL = "kumohub.io/profile"
HOME_VOLUME = "home"
SHM_VOLUME = "shm"
NO_TEAM = "none"
# Static AWS credentials never reach a user pod: AWS access is the IRSA role only, and the
# EKS pod identity webhook does not inject its own variables where these are already set.
AWS_CREDENTIAL_VARIABLES = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_PROFILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
)
# Traits whose configured value is combined with KumoHub's rather than replaced.
_MERGED_MAPPINGS = ("extra_labels", "extra_annotations", "node_selector", "extra_pod_config")
_MERGED_LISTS = ("volumes", "volume_mounts", "tolerations")


def label_value(raw: str) -> str:
    """`raw` itself when it is a valid label value, else KubeSpawner's safe slug of it."""
    return raw if is_label_value(raw) else safe_slug(raw, is_valid=is_valid_label)


def template_literal(value: str) -> str:
    """Protect a value from KubeSpawner's `{username}`-style expansion of labels and volumes."""
    return value.replace("{", "{{").replace("}", "}}")


def service_account_for(groups: frozenset[str], kubernetes: KubernetesSettings) -> str | None:
    """The IRSA service account: the first group listed in the mapping that the user is in."""
    for group, account in kubernetes.service_account_by_group.items():
        if group in groups:
            return account
    return kubernetes.default_service_account


def team_of(groups: frozenset[str], kubernetes: KubernetesSettings) -> str:
    """The group costs are booked to: the one that picks the service account, else the first."""
    for group in kubernetes.service_account_by_group:
        if group in groups:
            return group
    return min(groups) if groups else NO_TEAM


def _bytes(quantity: str | None) -> int | None:
    return None if quantity is None else quantity_bytes(quantity)


def profile_overrides(selection: Selection) -> dict[str, Any]:
    """Image, resources, GPU scheduling and maximum age of the chosen profile."""
    profile = selection.profile
    resources = profile.resources
    overrides: dict[str, Any] = {
        "image": selection.image,
        "cpu_guarantee": resources.cpu_guarantee,
        "cpu_limit": resources.cpu_limit,
        # In bytes, as Kubernetes reads '4G' (10^9); KubeSpawner alone would read 2^30.
        "mem_guarantee": _bytes(resources.mem_guarantee),
        "mem_limit": _bytes(resources.mem_limit),
        "extra_resource_limits": {},
    }
    if profile.gpu is not None:
        overrides["extra_resource_limits"] = {GPU_RESOURCE: str(profile.gpu.count)}
        overrides["node_selector"] = dict(profile.gpu.node_selector)
        overrides["tolerations"] = [
            t.model_dump(exclude_none=True) for t in profile.gpu.tolerations
        ]
    if profile.max_age:
        # Kubernetes ends the pod itself; the hub notices like any other exit.
        overrides["extra_pod_config"] = {"activeDeadlineSeconds": profile.max_age}
    return overrides


def storage_overrides(storage: StorageSettings, selection: Selection) -> dict[str, Any]:
    """Home claim (one per user, on EFS), team folder, read-only datasets and /dev/shm."""
    home = storage.home
    volumes: list[dict[str, Any]] = [
        # KubeSpawner fills in {pvc_name}, the claim it creates (or remembers) for this user.
        {"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": "{pvc_name}"}}
    ]
    mounts: list[dict[str, Any]] = [{"name": HOME_VOLUME, "mountPath": str(home.mount_path)}]
    shared = ([storage.team] if storage.team else []) + list(storage.datasets)
    for volume in shared:
        kind = "shared" if volume is storage.team else "dataset"
        name = f"{kind}-{volume.name}"
        claim: dict[str, Any] = {"claimName": template_literal(volume.claim_name)}
        if volume.read_only:
            claim["readOnly"] = True
        volumes.append({"name": name, "persistentVolumeClaim": claim})
        mounts.append(
            {"name": name, "mountPath": str(volume.mount_path), "readOnly": volume.read_only}
        )
    shm_size = selection.profile.shm_size
    if shm_size:
        volumes.append(
            {"name": SHM_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": shm_size}}
        )
        mounts.append({"name": SHM_VOLUME, "mountPath": str(SHM_PATH)})
    return {
        "pvc_name_template": home.pvc_name_template,
        "storage_class": home.storage_class,
        "storage_capacity": home.size,
        "storage_access_modes": ["ReadWriteMany"],
        "storage_pvc_ensure": True,
        # Homes outlive hub users; removing one is an administrator's decision.
        "delete_pvc": False,
        "volumes": volumes,
        "volume_mounts": mounts,
    }


def hardening_overrides(kubernetes: KubernetesSettings) -> dict[str, Any]:
    """A non-root pod with no way to gain privileges, and no init container at all."""
    uid, gid = kubernetes.uid, kubernetes.gid
    seccomp = {"type": "RuntimeDefault"}
    return {
        "uid": uid,
        "gid": gid,
        "fs_gid": gid,
        "privileged": False,
        "allow_privilege_escalation": False,
        "pod_security_context": {
            "runAsUser": uid,
            "runAsGroup": gid,
            "fsGroup": gid,
            "runAsNonRoot": True,
            "seccompProfile": seccomp,
        },
        "container_security_context": {
            "runAsUser": uid,
            "runAsGroup": gid,
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": seccomp,
        },
        "init_containers": [],
        "disable_user_config": True,
        # Service environment variables would tell the user about every service in the
        # namespace; the server needs none of them.
        "extra_pod_config": {"enableServiceLinks": False},
    }


def identity_overrides(
    username: str, groups: frozenset[str], selection: Selection, kubernetes: KubernetesSettings
) -> dict[str, Any]:
    """IRSA service account and the labels/annotations cost allocation reads."""
    profile = selection.profile
    team = team_of(groups, kubernetes)
    annotations = {
        USER_LABEL: username,
        TEAM_LABEL: team,
        "kumohub.io/groups": ",".join(sorted(groups)),
        PROFILE_LABEL: profile.slug,
        "kumohub.io/image": selection.image,
    }
    if profile.hourly_cost is not None:
        annotations["kumohub.io/hourly-cost-usd"] = f"{profile.hourly_cost:.2f}"
    return {
        "service_account": service_account_for(groups, kubernetes),
        # IRSA works through the projected `aws-iam-token` volume the EKS pod identity
        # webhook adds for the service account's role; it does not need the Kubernetes API
        # token, which users have no use for.
        "automount_service_account_token": False,
        "extra_labels": {
            USER_LABEL: label_value(username),
            TEAM_LABEL: label_value(team),
            PROFILE_LABEL: profile.slug,
        },
        "extra_annotations": {key: template_literal(v) for key, v in annotations.items()},
    }


def _items(value: Any) -> list[Any]:
    """KubeSpawner accepts lists or name-keyed dicts for volumes, mounts and tolerations."""
    if isinstance(value, Mapping):
        return [value[key] for key in sorted(value)]
    return list(value or [])


def _merged_list(configured: Any, ours: list[Any]) -> list[Any]:
    """Configured entries first, minus those KumoHub replaces (same name, or identical)."""
    names = {item.get("name") for item in ours if isinstance(item, Mapping)} - {None}
    kept = [
        item
        for item in _items(configured)
        if item not in ours and not (isinstance(item, Mapping) and item.get("name") in names)
    ]
    return kept + ours


def _label_problems(where: str, labels: Mapping[str, str] | None) -> list[str]:
    problems = []
    for key, value in (labels or {}).items():
        if not is_label_key(key):
            problems.append(f"{where}: {key!r} is not a valid label key")
        if not is_label_value(str(value)):
            problems.append(f"{where}[{key!r}]: {value!r} is not a valid label value")
    return problems


def _annotation_problems(where: str, annotations: Mapping[str, str] | None) -> list[str]:
    return [
        f"{where}: {key!r} is not a valid annotation key"
        for key in (annotations or {})
        if not is_label_key(key)
    ]


def api_form(obj: Any) -> Any:
    """A Kubernetes client model as the API sees it: camelCase keys, no unset fields."""
    if hasattr(obj, "openapi_types") and hasattr(obj, "attribute_map"):
        return {
            obj.attribute_map[attr]: api_form(getattr(obj, attr))
            for attr in obj.openapi_types
            if getattr(obj, attr) is not None
        }
    if isinstance(obj, Mapping):
        return {key: api_form(value) for key, value in obj.items() if value is not None}
    if isinstance(obj, list | tuple):
        return [api_form(item) for item in obj]
    return obj


def manifest_problems(manifest: Mapping[str, Any]) -> list[str]:
    """Names and labels of a pod or claim (API form) that the API server would refuse."""
    meta = manifest.get("metadata", {})
    spec = manifest.get("spec", {})
    problems = []
    name = meta.get("name", "")
    if not is_dns_subdomain(name):
        problems.append(f"metadata.name: {name!r} is not a valid object name")
    problems += _label_problems("metadata.labels", meta.get("labels"))
    problems += _annotation_problems("metadata.annotations", meta.get("annotations"))
    if manifest.get("kind") == "PersistentVolumeClaim":
        storage_class = spec.get("storageClassName")
        if storage_class is not None and not is_dns_subdomain(storage_class):
            problems.append(f"spec.storageClassName: {storage_class!r} is not a valid name")
        return problems
    account = spec.get("serviceAccountName")
    if account is not None and not is_dns_subdomain(account):
        problems.append(f"spec.serviceAccountName: {account!r} is not a valid name")
    problems += _label_problems("spec.nodeSelector", spec.get("nodeSelector"))
    for i, volume in enumerate(spec.get("volumes", [])):
        if not is_dns_label(volume.get("name", "")):
            problems.append(f"spec.volumes[{i}].name: {volume.get('name')!r} is not a valid name")
        claim = volume.get("persistentVolumeClaim")
        if claim is not None and not is_dns_subdomain(claim.get("claimName", "")):
            problems.append(
                f"spec.volumes[{i}].persistentVolumeClaim.claimName: "
                f"{claim.get('claimName')!r} is not a valid claim name"
            )
    for i, container in enumerate(spec.get("containers", [])):
        if not is_dns_label(container.get("name", "")):
            problems.append(f"spec.containers[{i}].name: {container.get('name')!r} is not valid")
    return problems


class InvalidManifestError(web.HTTPError):
    """KumoHub built an object the API server would refuse (a configuration problem)."""

    def __init__(self, kind: str, problems: Iterable[str]) -> None:
        super().__init__(500, f"KumoHub built an invalid {kind}: {'; '.join(problems)}")


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
            if name in _MERGED_MAPPINGS:
                value = {**(getattr(self, name) or {}), **value}
            elif name in _MERGED_LISTS:
                value = _merged_list(getattr(self, name), value)
            setattr(self, name, value)

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
