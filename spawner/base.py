"""What both KumoHub spawners share: the profile form, validation and the user-server policy.

`ProfileSpawnerMixin` sits in front of a JupyterHub spawner class. It renders the form,
validates every spawn request with `resolve_selection` (form and REST alike) and hands the
validated `Selection` to `apply_selection`, which each spawner implements for its platform.
"""

from __future__ import annotations

from typing import Any

from tornado import web
from traitlets import Instance, default
from traitlets.config import LoggingConfigurable

from kumohub import server_settings
from kumohub.settings import Settings

from .form import render_form
from .profiles import Selection, SpawnOptionsError, options_from_form, resolve_selection

# Seconds between the user server's own checks for idle kernels.
_KERNEL_CULL_INTERVAL = 60
# Server extensions of ours that every user server loads (from the command line, so user
# config cannot drop them).
QUERY_SERVER_EXTENSIONS = ("kumohub.extensions.query",)


class ProfileSpawnerMixin(LoggingConfigurable):
    """Profile form and tamper-proof option handling for a KumoHub spawner."""

    kumohub_settings = Instance(
        Settings, allow_none=True, help="The validated KumoHub settings document."
    ).tag(config=True)

    selection: Selection | None = None

    @property
    def settings(self) -> Settings:
        if self.kumohub_settings is None:
            raise RuntimeError("KumoHub settings were not configured for the spawner")
        return self.kumohub_settings

    def user_groups(self) -> frozenset[str]:
        """The user's JupyterHub groups (static in local mode, the provider's with OIDC)."""
        return frozenset(group.name for group in self.user.groups)

    @default("options_form")
    def _options_form_default(self) -> Any:
        return type(self)._render_options_form

    def _render_options_form(self) -> str:
        previous = self.orm_spawner.user_options if self.orm_spawner else None
        return render_form(self.settings.profiles, self.user_groups(), previous)

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """Refuse a bad form submission before JupyterHub records or starts anything."""
        try:
            options = options_from_form(formdata)
            return resolve_selection(options, self.settings.profiles, self.user_groups()).options
        except SpawnOptionsError as exc:
            raise web.HTTPError(400, str(exc)) from None

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return type(self)._apply_options

    def _apply_options(self, user_options: Any) -> None:
        """Validate user_options from any source (REST included) and apply them."""
        try:
            selection = resolve_selection(user_options, self.settings.profiles, self.user_groups())
        except SpawnOptionsError as exc:
            self.log.warning("Refused spawn options for %s: %s", self._log_name, exc)
            raise web.HTTPError(400, f"Invalid spawn request: {exc}") from None
        self.selection = selection
        self.user_options = selection.options
        if self.orm_spawner is not None:
            # Remember the canonical form, which the form pre-selects next time.
            self.orm_spawner.user_options = selection.options
        self.apply_selection(selection)

    def apply_selection(self, selection: Selection) -> None:
        """Map the chosen profile onto this spawner's traits (per platform)."""
        raise NotImplementedError

    def profile_server_args(self, selection: Selection) -> list[str]:
        """User-server flags that make a profile's idle timeout real, in both modes."""
        timeout = selection.profile.idle_timeout
        if not timeout:
            return []
        return [
            f"--ServerApp.shutdown_no_activity_timeout={timeout}",
            f"--MappingKernelManager.cull_idle_timeout={timeout}",
            f"--MappingKernelManager.cull_interval={_KERNEL_CULL_INTERVAL}",
            "--MappingKernelManager.cull_connected=True",
        ]

    def query_server_args(self) -> list[str]:
        """Enable the query REST API (the panel's back end) in the user server."""
        enabled = {name: True for name in QUERY_SERVER_EXTENSIONS}
        return [f"--ServerApp.jpserver_extensions={enabled!r}"]

    def server_settings_env(self, shared_roots: tuple[str, ...] = ()) -> dict[str, str]:
        resolved = server_settings.for_user(
            self.settings, self.user.name, self.name, self.user_groups(), shared_roots
        )
        return server_settings.to_env(resolved)

    def hardened_env(self) -> dict[str, str]:
        """Environment that keeps user-writable code and config out of the server."""
        return {"PYTHONNOUSERSITE": "1", "JUPYTER_PREFER_ENV_PATH": "1"}
