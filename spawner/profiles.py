"""Who may run what: resolve and validate a spawn request against the profiles in settings.

Every spawn, from the form or from the REST API's `user_options`, goes through
`resolve_selection`. It accepts only the canonical shape below and only what this user's
groups allow; anything else raises `SpawnOptionsError`, which the spawners turn into an
HTTP 400 before any process, pod or volume exists.

Canonical user_options::

    {"profile": "<profile slug>", "image": "<image choice slug>"}
    {"profile": "<profile slug>", "custom_image": "<reference matching free_image.pattern>"}
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kumohub.settings import ImageChoice, Profile

OPTION_KEYS = frozenset({"profile", "image", "custom_image"})
_MAX_VALUE_LENGTH = 512


class SpawnOptionsError(ValueError):
    """A spawn request asks for something that does not exist or is not allowed."""


@dataclass(frozen=True)
class Selection:
    """The validated outcome of a spawn request: one profile and one image."""

    profile: Profile
    image: str
    image_choice: ImageChoice | None

    @property
    def options(self) -> dict[str, str]:
        """The canonical user_options that reproduce this selection."""
        if self.image_choice is None:
            return {"profile": self.profile.slug, "custom_image": self.image}
        return {"profile": self.profile.slug, "image": self.image_choice.slug}


def _permitted(allowed_groups: Iterable[str], groups: frozenset[str]) -> bool:
    allowed = frozenset(allowed_groups)
    return not allowed or bool(allowed & groups)


def images_for(profile: Profile, groups: frozenset[str]) -> tuple[ImageChoice, ...]:
    """Image choices of a profile this user may pick."""
    return tuple(c for c in profile.images if _permitted(c.allowed_groups, groups))


def custom_image_allowed(profile: Profile, groups: frozenset[str]) -> bool:
    free = profile.free_image
    return free is not None and _permitted(free.allowed_groups, groups)


def profiles_for(profiles: Iterable[Profile], groups: frozenset[str]) -> tuple[Profile, ...]:
    """Profiles this user may use: allowed by group and with at least one usable image."""
    return tuple(
        p
        for p in profiles
        if _permitted(p.allowed_groups, groups)
        and (images_for(p, groups) or custom_image_allowed(p, groups))
    )


def default_options(profiles: Iterable[Profile], groups: frozenset[str]) -> dict[str, str]:
    """The selection used when a request names no profile (e.g. an API spawn with no body)."""
    usable = profiles_for(profiles, groups)
    if not usable:
        raise SpawnOptionsError("no profile is available to you; ask an administrator")
    profile = next((p for p in usable if p.default), usable[0])
    images = images_for(profile, groups)
    if not images:
        raise SpawnOptionsError(f"profile {profile.slug!r} needs an image; choose one")
    image = next((c for c in images if c.default), images[0])
    return {"profile": profile.slug, "image": image.slug}


def _string_field(options: Mapping[str, Any], key: str) -> str | None:
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, str):
        raise SpawnOptionsError(f"{key!r} must be a string, not {type(value).__name__}")
    if not value or len(value) > _MAX_VALUE_LENGTH:
        raise SpawnOptionsError(f"{key!r} must be 1-{_MAX_VALUE_LENGTH} characters long")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise SpawnOptionsError(f"{key!r} contains control characters")
    return value


def resolve_selection(
    options: Any, profiles: Iterable[Profile], groups: frozenset[str]
) -> Selection:
    """Validate spawn options for a user in `groups`; return what to start."""
    profiles = tuple(profiles)
    if options is None or options == {}:
        options = default_options(profiles, groups)
    if not isinstance(options, Mapping):
        raise SpawnOptionsError("spawn options must be a JSON object")
    unknown = sorted(str(key) for key in options if key not in OPTION_KEYS)
    if unknown:
        raise SpawnOptionsError(f"unknown spawn option(s): {', '.join(unknown)}")

    slug = _string_field(options, "profile")
    image_slug = _string_field(options, "image")
    custom = _string_field(options, "custom_image")
    if slug is None:
        raise SpawnOptionsError("'profile' is required")

    usable = {p.slug: p for p in profiles_for(profiles, groups)}
    profile = usable.get(slug)
    if profile is None:
        # Same words whether it does not exist or is not allowed: no probing for names.
        raise SpawnOptionsError(f"profile {slug!r} does not exist or is not available to you")

    if image_slug is not None and custom is not None:
        raise SpawnOptionsError("give either 'image' or 'custom_image', not both")
    if custom is not None:
        if not custom_image_allowed(profile, groups):
            raise SpawnOptionsError(f"profile {slug!r} does not accept a custom image")
        assert profile.free_image is not None
        if not re.fullmatch(profile.free_image.pattern, custom):
            raise SpawnOptionsError(
                f"custom image {custom!r} is not allowed: it must match "
                f"{profile.free_image.pattern!r} in full"
            )
        return Selection(profile=profile, image=custom, image_choice=None)

    choices = {c.slug: c for c in images_for(profile, groups)}
    if image_slug is None:
        if not choices:
            raise SpawnOptionsError(f"profile {slug!r} needs a 'custom_image'")
        choice = next((c for c in choices.values() if c.default), next(iter(choices.values())))
    else:
        found = choices.get(image_slug)
        if found is None:
            raise SpawnOptionsError(
                f"image {image_slug!r} does not exist in profile {slug!r} "
                "or is not available to you"
            )
        choice = found
    return Selection(profile=profile, image=choice.image, image_choice=choice)


def options_from_form(formdata: Mapping[str, list[str]]) -> dict[str, str]:
    """Turn submitted form fields (lists of strings) into canonical user_options.

    Each field must appear at most once; unknown fields are refused here too, so the form
    and the REST API share one set of rules in `resolve_selection`.
    """
    options: dict[str, str] = {}
    for key, values in formdata.items():
        if key == "_xsrf":
            continue
        if key not in OPTION_KEYS:
            raise SpawnOptionsError(f"unknown form field {key!r}")
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise SpawnOptionsError(f"form field {key!r} must be given exactly once")
        options[key] = values[0]
    # The form always posts the image select; a custom image replaces it when filled in.
    if options.get("custom_image", "") == "":
        options.pop("custom_image", None)
    else:
        options.pop("image", None)
    return options
