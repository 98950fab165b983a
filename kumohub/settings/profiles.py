"""The profile model: what a user may run, and who may choose it.

Shared by both spawners: the local spawner maps a profile onto a process, the KubeSpawner
subclass onto a pod. Access rules (allowed groups) live on profiles and on each choice inside.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from ._base import ByteQuantity, Regex, Slug, Strict, quantity_bytes


class Resources(Strict):
    """CPU (cores) and memory for the user server: guarantee (request) and limit."""

    cpu_guarantee: PositiveFloat | None = None
    cpu_limit: PositiveFloat | None = None
    mem_guarantee: ByteQuantity | None = None
    mem_limit: ByteQuantity | None = None

    @model_validator(mode="after")
    def _guarantee_within_limit(self) -> Resources:
        if self.cpu_guarantee and self.cpu_limit and self.cpu_guarantee > self.cpu_limit:
            raise ValueError("cpu_guarantee is larger than cpu_limit")
        if (
            self.mem_guarantee
            and self.mem_limit
            and quantity_bytes(self.mem_guarantee) > quantity_bytes(self.mem_limit)
        ):
            raise ValueError("mem_guarantee is larger than mem_limit")
        return self


class Toleration(Strict):
    """A Kubernetes toleration, so GPU pods may land on tainted GPU nodes."""

    key: str
    operator: Literal["Equal", "Exists"] = "Equal"
    value: str | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None


class GPU(Strict):
    """GPUs for a profile: type and count, and how to reach the GPU node pool."""

    type: str = Field(min_length=1, description="Shown to the user, e.g. 'NVIDIA A10G'.")
    count: PositiveInt = 1
    node_selector: dict[str, str] = Field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = (
        Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
    )


class ImageChoice(Strict):
    """One image a user can pick inside a profile."""

    slug: Slug
    display_name: str = Field(min_length=1)
    description: str = ""
    image: str = Field(min_length=1, description="Container image for Kubernetes mode.")
    allowed_groups: tuple[str, ...] = Field(
        default=(), description="Empty: everyone who may use the profile."
    )
    default: bool = False


class FreeImage(Strict):
    """A free-text image field, accepted only when the whole value matches `pattern`."""

    display_name: str = "Other image"
    pattern: Regex = Field(description="Must match the whole image reference.")
    allowed_groups: tuple[str, ...] = ()


class Profile(Strict):
    """A server size and software choice shown on the spawn form."""

    slug: Slug
    display_name: str = Field(min_length=1)
    description: str = ""
    default: bool = False
    resources: Resources = Resources()
    gpu: GPU | None = None
    shm_size: ByteQuantity | None = Field(
        default=None, description="Size of /dev/shm (PyTorch data loaders need more than 64M)."
    )
    images: tuple[ImageChoice, ...] = Field(min_length=1)
    free_image: FreeImage | None = None
    allowed_groups: tuple[str, ...] = Field(default=(), description="Empty: every signed-in user.")
    idle_timeout: PositiveInt | None = Field(
        default=None, description="Seconds of inactivity before the server is stopped."
    )
    max_age: PositiveInt | None = Field(
        default=None, description="Seconds after start when the server is stopped anyway."
    )
    hourly_cost: float | None = Field(default=None, ge=0, description="Shown to the user, USD.")

    @model_validator(mode="after")
    def _images_consistent(self) -> Profile:
        slugs = [choice.slug for choice in self.images]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise ValueError(f"image slugs must be unique, repeated: {', '.join(duplicates)}")
        if sum(choice.default for choice in self.images) > 1:
            raise ValueError("at most one image may be the default")
        return self
