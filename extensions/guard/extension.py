"""Build the guard for one running server and put it in front of every route.

Called when jupyter_server loads the extension. Anything that goes wrong while building
the guard leaves the server refusing every request rather than serving without a guard.
"""

from __future__ import annotations

import contextlib
import inspect
import os
from collections.abc import Callable
from typing import Any

from jupyter_core.paths import jupyter_config_dir, jupyter_data_dir, jupyter_runtime_dir
from tornado.routing import Rule

from kumohub import server_settings

from .audit import AuditLog
from .content_policy import ContentPolicy
from .contents import GuardedContentsManager
from .csp import sandbox_transform
from .decisions import RequestGuard
from .echo import echo_store_transform
from .locations import platform_locations
from .route_map import RouteMap
from .router import GuardMatcher, guard_rule, insert_first, refuse_everything, request_decider


def install(serverapp: Any) -> None:
    """Load the guard into `serverapp`, failing closed."""
    app = serverapp.web_app
    try:
        rule = _build(serverapp)
    except Exception:
        serverapp.log.critical(
            "The download guard could not be built; this server refuses every request",
            exc_info=True,
        )
        rule = refuse_everything(app, serverapp.log)
    insert_first(app, rule)
    # Other extensions load after this one; make sure the guard still comes first then.
    serverapp.io_loop.add_callback(insert_first, app, rule)


def _build(serverapp: Any) -> Rule:
    settings = server_settings.from_env()
    policy = settings.guard
    app = serverapp.web_app
    base_url = app.settings.get("base_url", "/")
    manager = serverapp.contents_manager
    root_dir = getattr(manager, "root_dir", None)
    locations = platform_locations(
        home=os.path.expanduser("~"),
        root_dir=root_dir,
        shared_roots=settings.shared_roots,
        data_dirs=(jupyter_data_dir(), jupyter_config_dir(), jupyter_runtime_dir()),
    )
    content = (
        ContentPolicy.build(policy, root_dir, settings.shared_roots)
        if root_dir and hasattr(manager, "_get_os_path")
        else None
    )
    audit = AuditLog.attach(
        serverapp.event_logger,
        server_owner=settings.user or os.environ.get("JUPYTERHUB_USER", ""),
        server_name=settings.server_name or os.environ.get("JUPYTERHUB_SERVER_NAME", ""),
        log_path=policy.audit_log_path,
    )
    routes = RouteMap(base_url, locations)
    guard = RequestGuard(
        base_url=base_url,
        policy=policy,
        locations=locations,
        routes=routes,
        contents=content,
        contents_root=root_dir,
        kernelspec_folder=_kernelspec_folders(serverapp),
    )
    matcher = GuardMatcher(lambda request: None, serverapp.log)
    rule = guard_rule(matcher, audit)
    matcher.decide = request_decider(guard, lambda: routes.refresh(app, skip=rule))
    app.add_transform(sandbox_transform(base_url, guard.open_servers))
    app.add_transform(echo_store_transform(base_url, policy.echo_store_max_bytes, audit))
    _check_server_settings(serverapp, manager)
    if isinstance(manager, GuardedContentsManager) and content is not None:
        manager.use_guard(content, audit)
    serverapp.log.info(
        "Download guard active (policy from %s)",
        server_settings.ENV_VAR if os.environ.get(server_settings.ENV_VAR) else "defaults",
    )
    return rule


def _kernelspec_folders(serverapp: Any) -> Callable[[str], str | None]:
    """Where each kernelspec lives, looked up when a kernelspec file is requested."""

    def folder(name: str) -> str | None:
        found = serverapp.kernel_spec_manager.find_kernel_specs()
        if inspect.isawaitable(found):
            with contextlib.suppress(AttributeError):
                found.close()  # type: ignore[union-attr]
            return None  # a remote kernelspec manager: no folder to trust
        return found.get(name)

    return folder


def _check_server_settings(serverapp: Any, manager: Any) -> None:
    """Say loudly when the server was started without the settings the guard relies on."""
    if not isinstance(manager, GuardedContentsManager):
        serverapp.log.error(
            "Download guard: the contents manager is %s, not GuardedContentsManager; "
            "renames and copies are not checked",
            type(manager).__name__,
        )
    if serverapp.allow_unauthenticated_access:
        serverapp.log.error("Download guard: ServerApp.allow_unauthenticated_access is on")
