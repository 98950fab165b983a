"""The contents manager of every KumoHub user server: the guard's anchor in the server.

The spawner names this class on the server's command line
(`--ServerApp.contents_manager_class`), which user configuration cannot override. That
makes it the guard's anchor:

- the server cannot start without the guard's package (the class would not import);
- it enables and links the guard extension itself, whatever the extension configuration
  says, so no config file can switch the guard off;
- it registers no `/files/` route at all;
- it refuses renames and copies that would dodge the file-type rule, a decision that
  needs the request body, which the router-level guard does not see.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from jupyter_server.services.contents.largefilemanager import AsyncLargeFileManager
from tornado import web

from . import EXTENSION
from .audit import AuditLog, current_username
from .content_policy import ContentPolicy
from .decisions import Verdict

Refusal = Callable[[ContentPolicy], "str | None"]


class GuardNotLoaded(RuntimeError):
    """The server was about to start without its download guard."""


class GuardedContentsManager(AsyncLargeFileManager):
    """Files on disk, minus the `/files/` route, with renames and copies under the policy."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._content_policy: ContentPolicy | None = None
        self._audit: AuditLog | None = None
        self._enable_guard_extension()

    def _enable_guard_extension(self) -> None:
        manager = getattr(self.parent, "extension_manager", None)
        if manager is None:
            return  # not inside a server (the class on its own)
        extension = manager.extensions.get(EXTENSION)
        if extension is None or not extension.enabled:
            if not manager.add_extension(EXTENSION, enabled=True):
                raise GuardNotLoaded(f"the download guard ({EXTENSION}) cannot be imported")
            manager.link_extension(EXTENSION)
            self.log.info("Download guard enabled by the contents manager")

    def use_guard(self, policy: ContentPolicy, audit: AuditLog) -> None:
        """Called by the guard extension once it is built."""
        self._content_policy = policy
        self._audit = audit

    def get_extra_handlers(self) -> list[Any]:
        """No `/files/` route: raw file downloads do not exist in this server."""
        return []

    def _os_path(self, api_path: str) -> str:
        return self._get_os_path(api_path.strip("/"))

    async def rename_file(self, old_path: str, new_path: str) -> Any:
        self._enforce(
            "PATCH",
            old_path,
            lambda policy: policy.rename_refusal(self._os_path(old_path), self._os_path(new_path)),
        )
        return await super().rename_file(old_path, new_path)

    async def copy(self, from_path: str, to_path: str | None = None) -> Any:
        def refusal(policy: ContentPolicy) -> str | None:
            source = self._os_path(from_path)
            if to_path is None or os.path.isdir(self._os_path(to_path)):
                # A copy into a folder keeps the file's name and type.
                return policy.outside_roots(source)
            return policy.rename_refusal(source, self._os_path(to_path))

        self._enforce("POST", from_path, refusal)
        return await super().copy(from_path, to_path)

    def _enforce(self, method: str, api_path: str, refusal: Refusal) -> None:
        policy, audit = self._content_policy, self._audit
        if policy is None or audit is None:
            raise web.HTTPError(503, "the download guard is not active in this server")
        reason = refusal(policy)
        if reason is None:
            return
        verdict = Verdict("contents", reason, f"api/contents/{api_path.strip('/')}")
        audit.blocked(verdict, method=method, user=current_username())
        raise web.HTTPError(403, f"Blocked by the KumoHub download guard: {reason}")
