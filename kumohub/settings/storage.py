"""Where homes, the team folder and datasets live: EFS on Kubernetes, folders in local mode."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pydantic import Field

from ._base import ByteQuantity, Slug, Strict


class LocalStorage(Strict):
    """Local mode: folders under a state directory stand in for EFS."""

    root: Path = Field(
        default=Path(".kumohub-state"),
        description="Relative paths are taken from the settings file's folder.",
    )


class HomeVolume(Strict):
    """Per-user home on EFS (the EFS CSI driver's dynamic access points)."""

    storage_class: str = "efs-home"
    size: ByteQuantity = "10Gi"
    pvc_name_template: str = "home-{username}"
    mount_path: PurePosixPath = PurePosixPath("/home/jovyan")


class SharedVolume(Strict):
    """A pre-provisioned claim mounted into every server (team folder, datasets)."""

    name: Slug
    claim_name: str
    mount_path: PurePosixPath
    read_only: bool = False


class StorageSettings(Strict):
    """Storage for both modes: `local` applies on one machine, the rest on Kubernetes."""

    local: LocalStorage = LocalStorage()
    home: HomeVolume = HomeVolume()
    team: SharedVolume | None = SharedVolume(
        name="team", claim_name="team-efs", mount_path=PurePosixPath("/home/jovyan/team")
    )
    datasets: tuple[SharedVolume, ...] = ()
