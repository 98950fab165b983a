"""Refuse a malformed REST request for a *new* named server before JupyterHub records it.

`POST /hub/api/users/<name>/servers/<server>` makes JupyterHub create the server's database
record before it even parses the body, so a tampered request would leave an empty named
server behind (and count against the user's limit). The only hook JupyterHub calls before
that moment is `JupyterHub.named_server_limit_per_user`, which may be a callable given the
request handler: `named_server_admission` returns such a callable. It validates a request
for a server that does not exist yet exactly as the spawner will, answers 400 when that
fails, and otherwise returns the configured limit. Requests for existing servers are left
to the spawner, which restores their saved options when it refuses one.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from jupyterhub.apihandlers.users import UserServerAPIHandler
from tornado import web

from kumohub.settings import Settings

from .profiles import Selection, SpawnOptionsError, resolve_selection

PlatformRefusal = Callable[[Selection], str | None]


def request_options(body: bytes) -> Any:
    """The JSON body of a spawn request (None when empty), or a 400 naming the problem."""
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise web.HTTPError(400, "Invalid spawn request: the body is not UTF-8 text") from None
    except ValueError as exc:
        raise web.HTTPError(400, f"Invalid spawn request: the body is not JSON ({exc})") from None


def check_new_server_request(
    settings: Settings,
    groups: frozenset[str],
    body: bytes,
    platform_refusal: PlatformRefusal,
) -> None:
    """Raise a 400 unless this body would be accepted for a new server of this user."""
    options = request_options(body)
    try:
        selection = resolve_selection(options, settings.profiles, groups)
    except SpawnOptionsError as exc:
        raise web.HTTPError(400, f"Invalid spawn request: {exc}") from None
    refusal = platform_refusal(selection)
    if refusal:
        raise web.HTTPError(400, refusal)


def named_server_admission(
    settings: Settings, limit: int, platform_refusal: PlatformRefusal
) -> Callable[[Any], int]:
    """A `named_server_limit_per_user` callable that also validates new-server requests."""

    def admit(handler: Any) -> int:
        if isinstance(handler, UserServerAPIHandler) and handler.request.method == "POST":
            user_name, server_name = handler.path_args[0], handler.path_args[1]
            user = handler.find_user(user_name)
            if user is not None and server_name and server_name not in user.orm_spawners:
                groups = frozenset(group.name for group in user.groups)
                check_new_server_request(settings, groups, handler.request.body, platform_refusal)
        return limit

    return admit
