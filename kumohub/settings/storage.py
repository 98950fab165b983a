"""Where homes, the team folder and datasets live: EFS on Kubernetes, folders in local mode."""

from __future__ import annotations

import string
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import ByteQuantity, Slug, Strict
from .kubernetes import check_dns_subdomain, is_dns_label

# Reserved for the memory-backed /dev/shm volume of every pod.
SHM_PATH = PurePosixPath("/dev/shm")  # noqa: S108 (a mount point, not a temp file)


def _check_mount_path(value: PurePosixPath) -> PurePosixPath:
    if not value.is_absolute() or value == PurePosixPath("/"):
        raise ValueError(f"must be an absolute folder other than '/' (got {str(value)!r})")
    if ".." in value.parts:
        raise ValueError(f"must not contain '..' (got {str(value)!r})")
    if value == SHM_PATH:
        raise ValueError(f"{SHM_PATH} is reserved for the profile's shared memory")
    return value


class LocalStorage(Strict):
    """Local mode: folders under a state directory stand in for EFS."""

    root: Path = Field(
        default=Path(".kumohub-state"),
        description="Relative paths are taken from the settings file's folder.",
    )


class HomeVolume(Strict):
    """Per-user home on EFS through a claim of the `efs-home` storage class.

    The claim's name depends on the username only, so every server of a user (named ones
    included) mounts the same home, and a deleted claim comes back under the same name. The
    storage class (EFS CSI driver, `provisioningMode: efs-ap`) turns that name into a fixed
    directory and access point: `basePath: /home`, `subPathPattern: ${.PVC.name}`,
    `ensureUniqueDirectory: "false"` and `reuseAccessPoint: "true"` give `/home/home-<user>`
    again for a recreated claim, `uid: "1000"` / `gid: "100"` make EFS enforce the pod user,
    and `reclaimPolicy: Retain` keeps the data when a claim is deleted.
    """

    storage_class: str = "efs-home"
    size: ByteQuantity = "10Gi"
    pvc_name_template: str = Field(
        default="home-{username}",
        description="'{username}' is the Kubernetes-safe form of the username.",
    )
    mount_path: PurePosixPath = PurePosixPath("/home/jovyan")

    @field_validator("storage_class")
    @classmethod
    def _class_is_name(cls, value: str) -> str:
        return check_dns_subdomain(value)

    @field_validator("pvc_name_template")
    @classmethod
    def _one_claim_per_user(cls, value: str) -> str:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
        if fields != {"username"}:
            raise ValueError(
                "must contain '{username}' and no other placeholder, so each user has one "
                f"home claim shared by all their servers (got {value!r})"
            )
        sample = value.format(username="user-0a1b2c")
        if not is_dns_label(sample):
            raise ValueError(
                f"gives claim names such as {sample!r}, which Kubernetes refuses: use "
                "lowercase letters, digits and '-' around '{username}'"
            )
        return value

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: PurePosixPath) -> PurePosixPath:
        return _check_mount_path(value)


class SharedVolume(Strict):
    """A pre-provisioned claim mounted into every server (the team folder)."""

    name: Slug
    claim_name: str
    mount_path: PurePosixPath
    read_only: bool = False

    @field_validator("claim_name")
    @classmethod
    def _claim_is_name(cls, value: str) -> str:
        return check_dns_subdomain(value)

    @field_validator("mount_path")
    @classmethod
    def _mount_path(cls, value: PurePosixPath) -> PurePosixPath:
        return _check_mount_path(value)


class DatasetVolume(SharedVolume):
    """A dataset claim: always mounted read-only, whatever the claim allows."""

    read_only: Literal[True] = True


class StorageSettings(Strict):
    """Storage for both modes: `local` applies on one machine, the rest on Kubernetes."""

    local: LocalStorage = LocalStorage()
    home: HomeVolume = HomeVolume()
    team: SharedVolume | None = SharedVolume(
        name="team", claim_name="team-efs", mount_path=PurePosixPath("/home/jovyan/team")
    )
    datasets: tuple[DatasetVolume, ...] = ()

    @model_validator(mode="after")
    def _volumes_distinct(self) -> StorageSettings:
        shared = ([self.team] if self.team else []) + list(self.datasets)
        names = [volume.name for volume in shared]
        repeated = sorted({name for name in names if names.count(name) > 1})
        if repeated:
            raise ValueError(f"team and dataset names must be unique, repeated: {repeated}")
        paths = [self.home.mount_path] + [volume.mount_path for volume in shared]
        repeated_paths = sorted({str(p) for p in paths if paths.count(p) > 1})
        if repeated_paths:
            raise ValueError(f"each volume needs its own mount_path, repeated: {repeated_paths}")
        return self
