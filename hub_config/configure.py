"""Turn a validated settings document into JupyterHub configuration.

`configure(c, settings)` only sets traitlets on `c` (it never appends to or mutates what is
already there), so calling it twice gives the same result; it is used by both modes.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from kumohub.spawner.admission import named_server_admission

from kumohub.settings import Settings

from .auth import configure_auth
from .token_scopes import user_role

REPO_ROOT = Path(__file__).resolve().parent.parent
NAMED_SERVER_LIMIT = 3


def culler_service(settings: Settings) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The jupyterhub-idle-culler service and the role it needs."""
    culling = settings.culling
    if not culling.enabled:
        return [], []
    command = [
        sys.executable,
        "-m",
        "jupyterhub_idle_culler",
        f"--timeout={culling.timeout}",
        f"--cull-every={culling.every}",
        f"--max-age={culling.max_age}",
    ]
    scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
    if culling.users:
        command.append("--cull-users")
        scopes.append("admin:users")
    service = {"name": "idle-culler", "command": command}
    role = {"name": "idle-culler", "scopes": scopes, "services": ["idle-culler"]}
    return [service], [role]


def configure_common(c: Any, settings: Settings) -> None:
    """What both modes share: auth, profiles, named servers, culling, hardening."""
    configure_auth(c, settings)
    c.JupyterHub.allow_named_servers = True
    # Also refuses a malformed request for a new named server before its record exists.
    c.JupyterHub.named_server_limit_per_user = named_server_admission(
        settings, NAMED_SERVER_LIMIT, c.JupyterHub.spawner_class.platform_refusal
    )
    c.Spawner.default_url = "/lab"
    # User config and user site-packages could re-enable what the platform switches off.
    c.Spawner.disable_user_config = True
    services, roles = culler_service(settings)
    c.JupyterHub.services = services
    # Merged: the culler's role and the `user` role without token minting.
    c.JupyterHub.load_roles = [*roles, user_role()]


def configure_local(c: Any, settings: Settings) -> None:
    """Local mode: hub, proxy and user servers as processes on loopback."""
    from kumohub.spawner.local import KumoLocalSpawner

    state = Path(settings.storage.local.root)
    state.mkdir(parents=True, exist_ok=True)
    c.JupyterHub.bind_url = settings.hub.bind_url
    c.JupyterHub.hub_ip = "127.0.0.1"
    c.JupyterHub.db_url = settings.hub.db_url or f"sqlite:///{state / 'jupyterhub.sqlite'}"
    c.JupyterHub.cookie_secret_file = str(state / "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = str(state / "jupyterhub.pid")
    c.ConfigurableHTTPProxy.pid_file = str(state / "jupyterhub-proxy.pid")
    c.ConfigurableHTTPProxy.command = list(
        settings.hub.proxy_command
        or [str(REPO_ROOT / "node_modules" / ".bin" / "configurable-http-proxy")]
    )
    c.JupyterHub.spawner_class = KumoLocalSpawner
    c.KumoLocalSpawner.kumohub_settings = settings
    c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
    c.Spawner.ip = "127.0.0.1"
    c.Spawner.http_timeout = 60
    c.Spawner.start_timeout = 120
    configure_common(c, settings)


def configure(c: Any, settings: Settings) -> None:
    if settings.mode == "local":
        configure_local(c, settings)
    else:
        from .kubernetes import configure_kubernetes

        configure_kubernetes(c, settings)
