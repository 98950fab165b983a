"""The profile model: what a user may run, and who may choose it.

Shared by both spawners: the local spawner maps a profile onto a process, the KubeSpawner
subclass onto a pod. Access rules (allowed groups) live on profiles and on each choice inside.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Field,
    PositiveFloat,
    PositiveInt,
    field_validator,
    model_validator,
)

from ._base import ByteQuantity, Regex, Slug, Strict, quantity_bytes
from .kubernetes import is_label_key, is_label_value

# An OCI image reference in plain ASCII: registry host[:port], lowercase path components,
# optional tag and digest. Anything else (spaces, ';', newlines, look-alike letters) is
# refused before a pattern is even consulted.
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_HOST = r"[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*(?::[0-9]{1,5})?"
IMAGE_REFERENCE = re.compile(
    rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?",
    re.ASCII,
)
MAX_IMAGE_REFERENCE = 255


def is_image_reference(value: str) -> bool:
    """Whether `value` is a well-formed image reference (no shell or YAML tricks inside)."""
    return len(value) <= MAX_IMAGE_REFERENCE and IMAGE_REFERENCE.fullmatch(value) is not None


def _check_image(value: str) -> str:
    if not is_image_reference(value):
        raise ValueError(f"{value!r} is not a valid image reference such as 'registry/name:tag'")
    return value


ImageReference = Annotated[str, AfterValidator(_check_image)]


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

    @model_validator(mode="after")
    def _valid_taint_match(self) -> Toleration:
        if not is_label_key(self.key):
            raise ValueError(f"key {self.key!r} is not a valid taint key")
        if self.operator == "Exists" and self.value is not None:
            raise ValueError("a toleration with operator 'Exists' takes no value")
        if self.value is not None and not is_label_value(self.value):
            raise ValueError(f"value {self.value!r} is not a valid taint value")
        return self


class GPU(Strict):
    """GPUs for a profile: type and count, and how to reach the GPU node pool."""

    type: str = Field(min_length=1, description="Shown to the user, e.g. 'NVIDIA A10G'.")
    count: PositiveInt = 1
    node_selector: dict[str, str] = Field(
        default_factory=dict, description="Node labels of the GPU node pool."
    )
    tolerations: tuple[Toleration, ...] = (
        Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
    )

    @field_validator("node_selector")
    @classmethod
    def _selector_is_labels(cls, value: dict[str, str]) -> dict[str, str]:
        for key, label in value.items():
            if not is_label_key(key):
                raise ValueError(f"{key!r} is not a valid node label key")
            if not is_label_value(label):
                raise ValueError(f"{label!r} (for {key!r}) is not a valid node label value")
        return value


class ImageChoice(Strict):
    """One image a user can pick inside a profile."""

    slug: Slug
    display_name: str = Field(min_length=1)
    description: str = ""
    image: ImageReference = Field(description="Container image for Kubernetes mode.")
    allowed_groups: tuple[str, ...] = Field(
        default=(), description="Empty: everyone who may use the profile."
    )
    default: bool = False


class FreeImage(Strict):
    """A free-text image field, accepted only when the whole value matches `pattern`.

    The pattern is applied with `re.fullmatch` in ASCII mode (so `\\w` or `\\d` never
    accept look-alike letters or digits from other scripts), and only to values that are
    already well-formed image references.
    """

    display_name: str = Field(default="Other image", min_length=1)
    pattern: Regex = Field(description="Must match the whole image reference.")
    allowed_groups: tuple[str, ...] = ()

    def accepts(self, value: str) -> bool:
        """Whether a user-typed image reference is allowed by this field."""
        return is_image_reference(value) and (
            re.fullmatch(self.pattern, value, flags=re.ASCII) is not None
        )


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
        default=None,
        ge=2,
        description=(
            "Seconds of inactivity after which the server stops itself (at most; GPU profiles "
            "set a shorter one than the hub-wide culler so idle GPUs are released sooner)."
        ),
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
        limit = self.resources.mem_limit
        if self.shm_size and limit and quantity_bytes(self.shm_size) > quantity_bytes(limit):
            raise ValueError(
                "shm_size is larger than resources.mem_limit (shared memory counts towards "
                "the memory limit)"
            )
        return self
