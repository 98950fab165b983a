"""The download guard policy, with secure defaults: data never reaches a laptop."""

from __future__ import annotations

from pydantic import Field, PositiveInt

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


class GuardPolicy(Strict):
    """What the user server may hand to a browser. Only tightening is safe to configure."""

    content_extensions: tuple[str, ...] = Field(
        default=_TEXT_TYPES,
        description="File types the editor may read through /api/contents.",
    )
    content_max_bytes: PositiveInt = Field(
        default=5 * 1024 * 1024, description="Largest file the editor may open."
    )
    terminals: bool = Field(default=True, description="Allow terminals in the user server.")
    proxied_servers: tuple[str, ...] = Field(
        default=("vscode",), description="Named jupyter-server-proxy servers users may open."
    )
