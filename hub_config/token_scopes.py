"""What users may do at the hub with their own login: everything but minting API tokens.

JupyterHub's default `user` role grants `self`, which includes the `tokens` scope: any user
could create an API token at /hub/token and use their server with curl from a laptop.
The guard refuses file routes to token requests as firmly as to browser requests, but a
token outlives a session and leaves the browser (where the sandbox CSP applies), so users
get no token scope at all. The tokens JupyterHub issues itself are unaffected: the
server's `$JUPYTERHUB_API_TOKEN` keeps the `server` role (post activity, reach its own
server) and the browser's OAuth token reaches the user's own servers only.
"""

from __future__ import annotations

from typing import Any

# `self` without `tokens`, and without sharing (a shared server would be reachable by
# other users' tokens).
USER_SCOPES = (
    "read:users!user",
    "read:users:name!user",
    "read:users:groups!user",
    "read:users:activity!user",
    "users:activity!user",
    "servers!user",
    "read:servers!user",
    "delete:servers!user",
    "access:servers!user",
    "read:tokens!user",
)


def user_role() -> dict[str, Any]:
    """The `user` role every user gets, replacing JupyterHub's default."""
    return {
        "name": "user",
        "description": "Start, stop and use one's own servers; no API tokens",
        "scopes": list(USER_SCOPES),
    }
