"""What a KumoHub profile, its storage, hardening and identity make of a user pod.

Four pure functions, each testable alone; `KumoKubeSpawner` applies their results as
KubeSpawner traits:

- `profile_overrides`: image, CPU/memory, GPU scheduling, maximum age;
- `storage_overrides`: the home claim on EFS, the team folder, read-only datasets, /dev/shm;
- `hardening_overrides`: non-root user, no privilege escalation, no capabilities, seccomp;
- `identity_overrides`: the IRSA service account and the cost-allocation labels.

Values the chart configures (labels such as `hub.jupyter.org/network-access-hub`, extra
volumes, node selectors) are kept; KumoHub's own keys win where both set one
(`MERGED_MAPPINGS`, `MERGED_LISTS`, `merged_list`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubespawner.slugs import is_valid_label, safe_slug

from kumohub.settings import KubernetesSettings, StorageSettings, quantity_bytes
from kumohub.settings.kubernetes import is_label_value
from kumohub.settings.storage import SHM_PATH

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
MERGED_MAPPINGS = ("extra_labels", "extra_annotations", "node_selector", "extra_pod_config")
MERGED_LISTS = ("volumes", "volume_mounts", "tolerations")


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


def merged_list(configured: Any, ours: list[Any]) -> list[Any]:
    """Configured entries first, minus those KumoHub replaces (same name, or identical)."""
    names = {item.get("name") for item in ours if isinstance(item, Mapping)} - {None}
    kept = [
        item
        for item in _items(configured)
        if item not in ours and not (isinstance(item, Mapping) and item.get("name") in names)
    ]
    return kept + ours
