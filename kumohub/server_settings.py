"""What the hub tells a user server: its guard policy and query settings, per user.

The spawner serializes this into the `KUMOHUB_SERVER_SETTINGS` environment variable of the
server process (both modes), so the server extensions read policy from the hub, not from
any file the user can edit. A server started without it gets the secure defaults.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from pydantic import Field, ValidationError

from .settings import GuardPolicy, QuerySettings, Settings
from .settings._base import Strict
from .settings.query import default_sample_data_dir

ENV_VAR = "KUMOHUB_SERVER_SETTINGS"


class ServerSettings(Strict):
    """Settings the user-server extensions need, resolved for one user."""

    user: str = ""
    server_name: str = ""
    groups: tuple[str, ...] = ()
    guard: GuardPolicy = GuardPolicy()
    query: QuerySettings = QuerySettings()
    workgroup: str | None = Field(default=None, description="Athena workgroup for this user.")
    workgroups: tuple[str, ...] = Field(
        default=(), description="Athena workgroups this user may pick (their groups' ones)."
    )
    shared_roots: tuple[str, ...] = Field(
        default=(), description="Absolute folders (team, datasets) symlinks may point into."
    )


def for_user(
    settings: Settings,
    user: str,
    server_name: str,
    groups: frozenset[str],
    shared_roots: tuple[str, ...] = (),
) -> ServerSettings:
    """Resolve the platform settings into what one user's server may use."""
    workgroup = None
    workgroups: tuple[str, ...] = ()
    if settings.query.athena is not None:
        athena = settings.query.athena
        mapped = sorted(
            {athena.workgroups_by_group[g] for g in groups if g in athena.workgroups_by_group}
        )
        workgroup = mapped[0] if mapped else athena.default_workgroup
        workgroups = tuple(mapped) or (workgroup,)
    query = settings.query
    if query.duckdb.enabled and query.duckdb.data_dir is None:
        # Resolved here, by the hub: the server runs with the user's HOME, not the hub's.
        duckdb = query.duckdb.model_copy(update={"data_dir": default_sample_data_dir()})
        query = query.model_copy(update={"duckdb": duckdb})
    return ServerSettings(
        user=user,
        server_name=server_name,
        groups=tuple(sorted(groups)),
        guard=settings.guard,
        query=query,
        workgroup=workgroup,
        workgroups=workgroups,
        shared_roots=shared_roots,
    )


def to_env(server_settings: ServerSettings) -> dict[str, str]:
    return {ENV_VAR: server_settings.model_dump_json()}


def from_env(environ: Mapping[str, str] | None = None) -> ServerSettings:
    """Read the settings the hub passed; secure defaults when there are none.

    A value that is present but malformed is an error: silently falling back could loosen
    a policy the hub meant to apply.
    """
    raw = (os.environ if environ is None else environ).get(ENV_VAR)
    if not raw:
        return ServerSettings()
    try:
        return ServerSettings.model_validate(json.loads(raw))
    except (ValueError, ValidationError) as exc:
        raise RuntimeError(f"{ENV_VAR} is malformed: {exc}") from exc
