"""The KumoHub settings document: one typed, validated description of the platform.

Local mode reads it from a YAML file; on Kubernetes it sits in the chart values under
`custom.kumohub`. Everything else (hub traitlets, spawn form, pod manifests, the user
server's guard and query policy) is derived from it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import Field, ValidationError, model_validator

from ._base import ByteQuantity, Slug, Strict, quantity_bytes
from .auth import AuthSettings, Groups, OIDCAuth, SharedPasswordAuth
from .culling import CullingSettings
from .guard import GuardPolicy
from .kubernetes import KubernetesSettings
from .profiles import GPU, FreeImage, ImageChoice, Profile, Resources, Toleration
from .query import AthenaSettings, DuckDBSettings, QuerySettings
from .storage import DatasetVolume, HomeVolume, LocalStorage, SharedVolume, StorageSettings

__all__ = [
    "GPU",
    "AthenaSettings",
    "AuthSettings",
    "ByteQuantity",
    "CullingSettings",
    "DatasetVolume",
    "DuckDBSettings",
    "FreeImage",
    "GuardPolicy",
    "HomeVolume",
    "HubSettings",
    "ImageChoice",
    "KubernetesSettings",
    "LocalStorage",
    "OIDCAuth",
    "Profile",
    "QuerySettings",
    "Resources",
    "Settings",
    "SettingsError",
    "SharedPasswordAuth",
    "SharedVolume",
    "Slug",
    "StorageSettings",
    "Toleration",
    "load_settings",
    "parse_settings",
    "quantity_bytes",
]


class SettingsError(Exception):
    """A settings document is malformed; the message names each bad field."""


class HubSettings(Strict):
    """The hub process itself."""

    bind_url: str = "http://127.0.0.1:8000"
    admin_users: tuple[str, ...] = ()
    allowed_users: tuple[str, ...] = Field(
        default=(), description="Local mode: who may sign in. Empty: members of any group."
    )
    db_url: str | None = Field(default=None, description="Default: SQLite in the state dir.")
    proxy_command: tuple[str, ...] | None = Field(
        default=None, description="configurable-http-proxy; default: the repo's node_modules."
    )


class Settings(Strict):
    """The whole platform configuration."""

    mode: Literal["local", "kubernetes"] = "local"
    hub: HubSettings = HubSettings()
    auth: Annotated[AuthSettings, Field(discriminator="kind")] = SharedPasswordAuth()
    groups: Groups = Groups()
    profiles: tuple[Profile, ...] = Field(min_length=1)
    storage: StorageSettings = StorageSettings()
    query: QuerySettings = QuerySettings()
    guard: GuardPolicy = GuardPolicy()
    culling: CullingSettings = CullingSettings()
    kubernetes: KubernetesSettings = KubernetesSettings()

    @model_validator(mode="after")
    def _profiles_consistent(self) -> Settings:
        slugs = [profile.slug for profile in self.profiles]
        duplicates = sorted({slug for slug in slugs if slugs.count(slug) > 1})
        if duplicates:
            raise ValueError(f"profile slugs must be unique, repeated: {', '.join(duplicates)}")
        if sum(profile.default for profile in self.profiles) > 1:
            raise ValueError("at most one profile may be the default")
        return self

    def groups_of(self, username: str) -> frozenset[str]:
        """Groups a user belongs to by the static membership in this document."""
        return frozenset(
            group for group, members in self.groups.members.items() if username in members
        )


def _location(loc: tuple[Any, ...]) -> str:
    """Render a pydantic error location as `profiles[1].resources.cpu_limit`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("shared-password", "oidc"):
            continue  # discriminator tag, not a field the user wrote
        else:
            out += f".{part}" if out else str(part)
    return out or "(document)"


def format_validation_error(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: {exc.error_count()} problem(s) in the KumoHub settings:"]
    for error in exc.errors():
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key (not part of the settings schema)"
        lines.append(f"  - {_location(error['loc'])}: {message}")
    return "\n".join(lines)


def parse_settings(data: Any, source: str = "settings") -> Settings:
    """Validate a settings mapping; raise SettingsError with one line per bad field."""
    if not isinstance(data, dict):
        raise SettingsError(f"{source}: the settings document must be a mapping of keys")
    try:
        return Settings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc, source)) from None


def load_settings(path: str | Path) -> Settings:
    """Read and validate a YAML settings file.

    Relative local paths (the state directory, the DuckDB data folder) are resolved
    against the file's folder so the document means the same wherever the hub starts.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SettingsError(f"{path}: cannot read the settings file: {exc.strerror}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise SettingsError(f"{path}: not valid YAML: {exc}") from None
    settings = parse_settings(data, str(path))
    return _resolve_paths(settings, path.parent.resolve())


def _resolve_paths(settings: Settings, base: Path) -> Settings:
    root = settings.storage.local.root
    if not root.is_absolute():
        root = (base / root).resolve()
    storage = settings.storage.model_copy(
        update={"local": settings.storage.local.model_copy(update={"root": root})}
    )
    data_dir = settings.query.duckdb.data_dir
    if data_dir is not None and not data_dir.is_absolute():
        duckdb = settings.query.duckdb.model_copy(update={"data_dir": base / data_dir})
        query = settings.query.model_copy(update={"duckdb": duckdb})
    else:
        query = settings.query
    return settings.model_copy(update={"storage": storage, "query": query})
