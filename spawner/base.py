"""What both KumoHub spawners share: the profile form, validation and the user-server policy.

`ProfileSpawnerMixin` sits in front of a JupyterHub spawner class. It renders the form,
validates every spawn request with `resolve_selection` (form and REST alike) and hands the
validated `Selection` to `apply_selection`, which each spawner implements for its platform.

A refused request leaves nothing behind. JupyterHub stores a request's `user_options`
before any hook can look at them, and creates a named server's record as soon as a request
names it; so the mixin keeps the last options it accepted in the spawner's state, puts them
back when it refuses a request, and removes a named server's record when that server has
never accepted a request (see `spawner/admission.py` for the check that runs before
JupyterHub creates a new named server at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from jupyterhub.utils import maybe_future
from sqlalchemy.orm import object_session
from tornado import web
from traitlets import Any as AnyTrait
from traitlets import Instance, default
from traitlets.config import LoggingConfigurable

from kumohub import server_settings
from kumohub.settings import Settings

from .form import render_form
from .guard_args import download_guard_args
from .profiles import Selection, SpawnOptionsError, options_from_form, resolve_selection

# Seconds between the user server's own checks for idle kernels.
_KERNEL_CULL_INTERVAL = 60
# Where the last accepted options live in the spawner's saved state.
_ACCEPTED_STATE_KEY = "kumohub_options"
# Server extensions of ours that every user server loads (from the command line, so user
# config cannot drop them).
QUERY_SERVER_EXTENSIONS = ("kumohub.extensions.query",)


class ProfileSpawnerMixin(LoggingConfigurable):
    """Profile form and tamper-proof option handling for a KumoHub spawner."""

    kumohub_settings = Instance(
        Settings, allow_none=True, help="The validated KumoHub settings document."
    ).tag(config=True)

    user_options = AnyTrait(
        help="""Options of the current spawn request, as the client sent them.

        Any JSON value is accepted here (JupyterHub's own trait wants an object and answers
        anything else with a 500 after saving it); `apply_user_options` validates it and
        replaces it with the canonical options, or refuses the spawn.
        """
    )

    @default("user_options")
    def _user_options_default(self) -> dict[str, Any]:
        return {}

    selection: Selection | None = None
    _last_accepted_options: dict[str, str] | None = None
    _had_saved_state = False
    _refused_spawn = False

    @property
    def settings(self) -> Settings:
        if self.kumohub_settings is None:
            raise RuntimeError("KumoHub settings were not configured for the spawner")
        return self.kumohub_settings

    def user_groups(self) -> frozenset[str]:
        """The user's JupyterHub groups (static in local mode, the provider's with OIDC)."""
        return frozenset(group.name for group in self.user.groups)

    # -- the form ------------------------------------------------------------------------

    @default("options_form")
    def _options_form_default(self) -> Any:
        return type(self)._kumohub_options_form

    def _kumohub_options_form(self) -> str:
        return render_form(self.settings.profiles, self.user_groups(), self.previous_options())

    def previous_options(self) -> dict[str, str] | None:
        """What this server last started with, for the form to pre-select."""
        if self._last_accepted_options:
            return dict(self._last_accepted_options)
        saved = self.orm_spawner.user_options if self.orm_spawner is not None else None
        return dict(saved) if isinstance(saved, Mapping) else None

    def options_from_form(self, formdata: dict[str, list[str]]) -> dict[str, str]:
        """Refuse a bad form submission before JupyterHub records or starts anything."""
        try:
            options = options_from_form(formdata)
            selection = resolve_selection(options, self.settings.profiles, self.user_groups())
        except SpawnOptionsError as exc:
            if not self.active:
                self._forget_unused_named_server()
            raise web.HTTPError(400, f"Invalid spawn request: {exc}") from None
        return selection.options

    # -- validation of every spawn ------------------------------------------------------

    @default("apply_user_options")
    def _apply_user_options_default(self) -> Any:
        return type(self)._apply_options

    def _apply_options(self, user_options: Any) -> None:
        """Validate user_options from any source (REST included) and apply them."""
        self._refused_spawn = False
        try:
            selection = resolve_selection(user_options, self.settings.profiles, self.user_groups())
        except SpawnOptionsError as exc:
            self._refuse(f"Invalid spawn request: {exc}")
        refusal = self.platform_refusal(selection)
        if refusal:
            self._refuse(refusal)
        self.selection = selection
        self.user_options = selection.options
        self._last_accepted_options = selection.options
        self._save_options(selection.options)
        # User config and user site-packages could switch off what the platform enforces.
        self.disable_user_config = True
        self.apply_selection(selection)

    @classmethod
    def platform_refusal(cls, selection: Selection) -> str | None:
        """Why this platform cannot run an otherwise valid selection (None: it can)."""
        return None

    def _refuse(self, message: str) -> NoReturn:
        """Answer 400 and put back the options JupyterHub already saved for this request."""
        self.log.warning("Refused spawn for %s: %s", self._log_name, message)
        self._refused_spawn = True
        previous = dict(self._last_accepted_options or {})
        self.user_options = previous
        self._save_options(previous)
        raise web.HTTPError(400, message)

    def _save_options(self, options: dict[str, str]) -> None:
        if self.orm_spawner is None:
            return
        self.orm_spawner.user_options = options
        session = object_session(self.orm_spawner)
        if session is not None:
            session.commit()

    async def run_post_stop_hook(self) -> Any:
        """After JupyterHub has cleaned up a refused spawn, drop a record it should not keep."""
        result = await maybe_future(super().run_post_stop_hook())
        if self._refused_spawn:
            self._refused_spawn = False
            self._forget_unused_named_server()
        return result

    def _forget_unused_named_server(self) -> None:
        """Remove this named server's record if no request for it was ever accepted."""
        if not self.name or self._last_accepted_options or self._had_saved_state:
            return
        session = object_session(self.orm_spawner) if self.orm_spawner is not None else None
        if session is None:
            return
        self.log.info("Removing %s: no spawn request for it was ever accepted", self._log_name)
        session.delete(self.orm_spawner)
        session.commit()
        self.user.spawners.pop(self.name, None)

    def apply_selection(self, selection: Selection) -> None:
        """Map the chosen profile onto this spawner's traits (per platform)."""
        raise NotImplementedError

    # -- state: the last accepted options survive stops and hub restarts -----------------

    def load_state(self, state: dict[str, Any]) -> None:
        super().load_state(state)
        self._had_saved_state = bool(state)
        accepted = state.get(_ACCEPTED_STATE_KEY)
        if isinstance(accepted, Mapping):
            self._last_accepted_options = dict(accepted)

    def get_state(self) -> dict[str, Any]:
        state = super().get_state()
        if self._last_accepted_options:
            state[_ACCEPTED_STATE_KEY] = dict(self._last_accepted_options)
        return state

    # -- what the user server gets -------------------------------------------------------

    def profile_server_args(self, selection: Selection) -> list[str]:
        """User-server flags that make a profile's idle timeout real, in both modes.

        Idle kernels are culled after half the timeout, and the server exits after the other
        half without activity (culling a kernel counts as activity), so a forgotten server
        stops within the timeout (plus the server's one-minute check interval).
        """
        timeout = selection.profile.idle_timeout
        if not timeout:
            return []
        half = max(1, timeout // 2)
        return [
            f"--ServerApp.shutdown_no_activity_timeout={half}",
            f"--MappingKernelManager.cull_idle_timeout={half}",
            f"--MappingKernelManager.cull_interval={min(_KERNEL_CULL_INTERVAL, half)}",
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

    def get_args(self) -> list[str]:
        """Every user server starts with the download guard; see spawner/guard_args.py."""
        return [*super().get_args(), *download_guard_args(self.settings.guard)]  # type: ignore[misc]
