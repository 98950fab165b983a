"""Shared building blocks for the settings schema.

Every model forbids unknown keys: a typo in a settings document is an error at start-up,
never a silently ignored option.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict


class Strict(BaseModel):
    """Base for every settings model: unknown keys are errors, models are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


_SLUG = re.compile(r"[a-z0-9]([a-z0-9-]{0,38}[a-z0-9])?")


def _check_slug(value: str) -> str:
    if not _SLUG.fullmatch(value):
        raise ValueError(
            "must be 1-40 lowercase letters, digits or '-', starting and ending with a letter "
            f"or digit (got {value!r})"
        )
    return value


Slug = Annotated[str, AfterValidator(_check_slug)]
"""An identifier that is safe in URLs, Kubernetes names and labels."""

_QUANTITY = re.compile(r"(?P<number>\d+(\.\d+)?)(?P<unit>[KMGT]i?)?")
_UNITS = {
    None: 1,
    "K": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
}


def _check_quantity(value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise ValueError(f"must be a byte quantity such as '512M', '4G' or '8Gi' (got {value!r})")
    return value


ByteQuantity = Annotated[str, AfterValidator(_check_quantity)]
"""A memory or storage size in Kubernetes notation ('4G', '512Mi')."""


def quantity_bytes(value: str) -> int:
    """Convert a validated byte quantity to a number of bytes."""
    match = _QUANTITY.fullmatch(value)
    if match is None:
        raise ValueError(f"not a byte quantity: {value!r}")
    return int(float(match["number"]) * _UNITS[match["unit"]])


def _check_regex(value: str) -> str:
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"is not a valid regular expression: {exc}") from exc
    return value


Regex = Annotated[str, AfterValidator(_check_regex)]
"""A regular expression; wherever one is used it must match the whole value."""
