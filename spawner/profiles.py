"""Who may run what: resolve and validate a spawn request against the profiles in settings.

Every spawn, from the form or from the REST API's `user_options`, goes through
`resolve_selection`. It accepts only the canonical shape below and only what this user's
groups allow; anything else raises `SpawnOptionsError`, which the spawners turn into an
HTTP 400 before any process, pod or volume exists.

The rules, in the order they are checked:

1. The options are a JSON object (absent, null or `{}`: this user's default profile).
2. Only the keys `profile`, `image` and `custom_image` exist.
3. Each value is a string of 1-512 printable characters (no control or invisible ones).
4. `profile` is given, and names a profile this user's groups allow (the same words whether
   it does not exist or is not allowed, so names cannot be probed).
5. `image` and `custom_image` are not both given.
6. `custom_image` only where the profile has a free-text image field this user may use, and
   only a well-formed image reference that the field's pattern matches in full (ASCII).
7. `image` names an image choice of that profile allowed for this user's groups.

Canonical user_options::

    {"profile": "<profile slug>", "image": "<image choice slug>"}
    {"profile": "<profile slug>", "custom_image": "<reference matching free_image.pattern>"}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from kumohub.settings import ImageChoice, Profile

OPTION_KEYS = frozenset({"profile", "image", "custom_image"})
_MAX_VALUE_LENGTH = 512
_MAX_NAMES_SHOWN = 5


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


def json_type(value: Any) -> str:
    """The JSON name of a value's type, for messages a REST client understands."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, str):
        return "a string"
    return type(value).__name__


def _string_field(options: Mapping[str, Any], key: str) -> str | None:
    if key not in options:
        return None
    value = options[key]
    if not isinstance(value, str):
        raise SpawnOptionsError(f"{key!r} must be a string, not {json_type(value)}")
    if not value:
        raise SpawnOptionsError(f"{key!r} must not be empty")
    if len(value) > _MAX_VALUE_LENGTH:
        raise SpawnOptionsError(
            f"{key!r} is {len(value)} characters long; at most {_MAX_VALUE_LENGTH} are allowed"
        )
    if not value.isprintable():
        raise SpawnOptionsError(f"{key!r} contains control or invisible characters")
    return value


def resolve_selection(
    options: Any, profiles: Iterable[Profile], groups: frozenset[str]
) -> Selection:
    """Validate spawn options for a user in `groups`; return what to start."""
    profiles = tuple(profiles)
    if options is None or (isinstance(options, Mapping) and not options):
        options = default_options(profiles, groups)
    if not isinstance(options, Mapping):
        raise SpawnOptionsError(f"spawn options must be a JSON object, not {json_type(options)}")
    unknown = sorted(repr(str(key)[:40]) for key in options if key not in OPTION_KEYS)
    if unknown:
        shown = ", ".join(unknown[:_MAX_NAMES_SHOWN])
        more = len(unknown) - _MAX_NAMES_SHOWN
        shown += f" and {more} more" if more > 0 else ""
        raise SpawnOptionsError(
            f"unknown spawn option(s): {shown} (allowed: {', '.join(sorted(OPTION_KEYS))})"
        )

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
        if not profile.free_image.accepts(custom):
            raise SpawnOptionsError(
                f"custom image {custom!r} is not allowed: it must be an image reference "
                f"that matches {profile.free_image.pattern!r} in full"
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
            raise SpawnOptionsError(f"unknown form field {key[:40]!r}")
        if not isinstance(values, list) or len(values) != 1 or not isinstance(values[0], str):
            raise SpawnOptionsError(f"form field {key!r} must be given exactly once")
        options[key] = values[0]
    # The form always posts the image select; a custom image replaces it when filled in.
    if options.get("custom_image", "") == "":
        options.pop("custom_image", None)
    else:
        options.pop("image", None)
    return options
