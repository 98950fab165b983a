"""The download guard policy, with secure defaults: data never reaches a laptop.

The policy travels from the settings document to every user server (see
`kumohub.server_settings`); the guard extension enforces it. Every field can only loosen
what the editor may read, never open a route the guard closes, so a mistake in the
document can make the editor less useful but cannot make a download possible.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Annotated

from pydantic import AfterValidator, Field, PositiveInt

from ._base import Strict

_TEXT_TYPES = (
    ".ipynb",
    ".py",
    ".md",
    ".txt",
    ".sql",
    ".r",
    ".sh",
    ".toml",
    ".cfg",
    ".ini",
    ".yaml",
    ".yml",
    ".js",
    ".ts",
    ".css",
    ".html",
    ".rst",
)

_EXTENSION = re.compile(r"\.[a-z0-9][a-z0-9_+-]{0,15}")
_SERVER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,39}")
# Route names of the user server itself; a proxied server cannot take one of them.
_RESERVED_SERVER_NAMES = frozenset(
    {"api", "files", "kernelspecs", "lab", "nbconvert", "proxy", "static", "terminals", "view"}
)


def _check_extension(value: str) -> str:
    if not _EXTENSION.fullmatch(value):
        raise ValueError(
            f"must be a lowercase file extension with its dot, such as '.py' (got {value!r})"
        )
    return value


def _check_server_name(value: str) -> str:
    if not _SERVER_NAME.fullmatch(value):
        raise ValueError(
            "must be a jupyter-server-proxy server name: letters, digits, '-' or '_' "
            f"(got {value!r})"
        )
    if value.lower() in _RESERVED_SERVER_NAMES:
        raise ValueError(f"{value!r} is a route of the user server, not a proxied server")
    return value


def _check_log_path(value: str) -> str:
    if not PurePosixPath(value).is_absolute():
        raise ValueError(f"must be an absolute path (got {value!r})")
    return value


FileExtension = Annotated[str, AfterValidator(_check_extension)]
ServerName = Annotated[str, AfterValidator(_check_server_name)]


class GuardPolicy(Strict):
    """What the user server may hand to a browser. Only tightening is safe to configure."""

    content_extensions: tuple[FileExtension, ...] = Field(
        default=_TEXT_TYPES,
        description="File types the editor may read as text through /api/contents.",
    )
    base64_extensions: tuple[FileExtension, ...] = Field(
        default=(),
        description=(
            "Binary file types (e.g. '.png') the image viewer may read as base64 through "
            "/api/contents. Empty by default: any bytes fit in a binary file. Images in "
            "notebook outputs render without this (they are part of the notebook)."
        ),
    )
    content_max_bytes: PositiveInt = Field(
        default=5 * 1024 * 1024, description="Largest file the editor may open."
    )
    echo_store_max_bytes: PositiveInt = Field(
        default=1024 * 1024,
        description=(
            "Largest response of the stores that echo what was saved (/api/config, "
            "/lab/api/settings, /lab/api/workspaces); a kernel can write anything there."
        ),
    )
    terminals: bool = Field(default=True, description="Allow terminals in the user server.")
    proxied_servers: tuple[ServerName, ...] = Field(
        default=("vscode",), description="Named jupyter-server-proxy servers users may open."
    )
    audit_log_path: Annotated[str, AfterValidator(_check_log_path)] | None = Field(
        default=None,
        description=(
            "File every user server appends its blocked-attempt events to, one JSON line "
            "each. Events always go to the server's standard error stream as well."
        ),
    )
