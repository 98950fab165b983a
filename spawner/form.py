"""The spawn form: the profiles this user may choose, every displayed string escaped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from html import escape

from kumohub.settings import Profile

from .profiles import custom_image_allowed, images_for, profiles_for

_SCRIPT = """
<script>
(function () {
  // Only the chosen profile's image fields are submitted.
  function sync() {
    document.querySelectorAll('.kumohub-profile').forEach(function (card) {
      var radio = card.querySelector('input[name="profile"]');
      card.querySelectorAll('select, input[type="text"]').forEach(function (field) {
        field.disabled = !radio.checked;
      });
      card.classList.toggle('kumohub-selected', radio.checked);
    });
  }
  document.querySelectorAll('input[name="profile"]').forEach(function (radio) {
    radio.addEventListener('change', sync);
  });
  sync();
})();
</script>
"""

_STYLE = """
<style>
.kumohub-profile { border: 1px solid #ccc; border-radius: 6px; padding: 10px 14px;
  margin-bottom: 10px; }
.kumohub-profile.kumohub-selected { border-color: #f37726; background: #fff8f3; }
.kumohub-profile label.kumohub-title { font-weight: 600; font-size: 1.1em; }
.kumohub-badge { display: inline-block; border-radius: 4px; padding: 1px 6px; margin-left: 6px;
  font-size: 0.8em; background: #e8e8e8; }
.kumohub-badge.kumohub-gpu { background: #76b900; color: white; }
.kumohub-meta { color: #555; margin: 4px 0 6px 0; }
</style>
"""


def _span(low: object, high: object) -> str:
    """A guarantee and a limit as a range; one value if only one is set or both agree."""
    if low and high and low != high:
        return f"{low}–{high}"
    return str(high or low)


def _duration(seconds: int) -> str:
    if seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds >= 60:
        return f"{seconds // 60} min"
    return f"{seconds} s"


def _resources_line(profile: Profile) -> str:
    r = profile.resources
    parts = []
    if r.cpu_guarantee or r.cpu_limit:
        cpu = _span(r.cpu_guarantee and f"{r.cpu_guarantee:g}", r.cpu_limit and f"{r.cpu_limit:g}")
        parts.append(f"{cpu} CPU")
    if r.mem_guarantee or r.mem_limit:
        parts.append(f"{_span(r.mem_guarantee, r.mem_limit)} memory")
    if profile.shm_size:
        parts.append(f"{profile.shm_size} shared memory")
    if profile.idle_timeout:
        parts.append(f"stops after at most {_duration(profile.idle_timeout)} idle")
    if profile.max_age:
        parts.append(f"runs at most {_duration(profile.max_age)}")
    return " · ".join(parts)


def _profile_card(profile: Profile, groups: frozenset[str], selected: Mapping[str, str]) -> str:
    slug = escape(profile.slug, quote=True)
    checked = " checked" if selected.get("profile") == profile.slug else ""
    badges = ""
    if profile.gpu:
        gpu = f"{profile.gpu.count}× {profile.gpu.type}"
        badges += f'<span class="kumohub-badge kumohub-gpu">GPU {escape(gpu)}</span>'
    if profile.hourly_cost is not None:
        badges += f'<span class="kumohub-badge kumohub-cost">${profile.hourly_cost:.2f}/hour</span>'

    options = []
    for choice in images_for(profile, groups):
        is_selected = selected.get("profile") == profile.slug and (
            selected.get("image") == choice.slug or ("image" not in selected and choice.default)
        )
        attrs = " selected" if is_selected else ""
        label = choice.display_name + (f" — {choice.description}" if choice.description else "")
        options.append(
            f'<option value="{escape(choice.slug, quote=True)}"{attrs}>{escape(label)}</option>'
        )
    image_field = ""
    if options:
        image_field = (
            f'<label for="image-{slug}">Image</label> '
            f'<select class="form-control" id="image-{slug}" name="image">{"".join(options)}'
            "</select>"
        )
    custom_field = ""
    if custom_image_allowed(profile, groups):
        assert profile.free_image is not None
        previous = selected.get("custom_image", "") if checked else ""
        custom_field = (
            f'<div><label for="custom-{slug}">{escape(profile.free_image.display_name)}</label> '
            f'<input type="text" class="form-control" id="custom-{slug}" name="custom_image" '
            f'value="{escape(previous, quote=True)}" '
            f'placeholder="{escape(profile.free_image.pattern, quote=True)}"></div>'
        )
    return (
        f'<div class="kumohub-profile" data-profile="{slug}">'
        f'<input type="radio" name="profile" id="profile-{slug}" value="{slug}"{checked}> '
        f'<label class="kumohub-title" for="profile-{slug}">{escape(profile.display_name)}'
        f"</label>{badges}"
        f'<div class="kumohub-meta">{escape(profile.description)}</div>'
        f'<div class="kumohub-meta">{escape(_resources_line(profile))}</div>'
        f"{image_field}{custom_field}</div>"
    )


def render_form(
    profiles: Iterable[Profile], groups: frozenset[str], previous: Mapping[str, str] | None
) -> str:
    """HTML for JupyterHub's spawn page; pre-selects the user's previous valid choice."""
    usable = profiles_for(profiles, groups)
    if not usable:
        return "<p>No server profile is available to you. Ask an administrator for access.</p>"
    selected = dict(previous or {})
    if selected.get("profile") not in {p.slug for p in usable}:
        default = next((p for p in usable if p.default), usable[0])
        selected = {"profile": default.slug}
    cards = "".join(_profile_card(p, groups, selected) for p in usable)
    return f"{_STYLE}<div class='kumohub-profiles'>{cards}</div>{_SCRIPT}"
