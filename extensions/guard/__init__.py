"""The download guard: no route of a user server hands company data to a browser.

A jupyter_server extension that puts one rule in front of every route of the server (see
`router`), judges each request on every reading of its path (`paths`, `decisions`),
bounds what the editor may read through `/api/contents` (`content_policy`), adds a
sandbox Content-Security-Policy to the server's pages (`csp`) and records one audit
event per refused request (`audit`). `contents.GuardedContentsManager` anchors it in the
server so that the user cannot switch it off. docs/security.md describes the whole model.
"""

from __future__ import annotations

from typing import Any

EXTENSION = "kumohub.extensions.guard"


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": EXTENSION}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .extension import install

    install(serverapp)
