"""The guard's verdict on one request: which routes are closed, bounded or open.

`RequestGuard.decide` sees the method, the raw path and the query arguments of a request
before any handler does and returns a `Verdict` when the request must not reach its
handler. It judges every reading of the path (see `paths`), so an encoding trick that
changes which handler tornado picks, or what a proxy behind it resolves, changes nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote

from kumohub.settings import GuardPolicy

from .content_policy import ContentPolicy
from .locations import Locations, is_within
from .paths import is_plain, path_forms, relative_to_base, segments
from .route_map import KERNEL_LOGOS, RouteMap

QueryArguments = Mapping[str, Sequence[bytes]]
KernelspecFolder = Callable[[str], "str | None"]

# Routes that only ever hand file bytes to the browser: closed outright.
CLOSED_ROUTES = {
    "files": ("files", "raw file downloads are closed"),
    "nbconvert": ("nbconvert", "notebook exports are closed"),
    "view": ("view", "file viewer pages are closed"),
    "proxy": ("proxy", "the port proxy is closed"),
}
# code-server routes behind a proxied server that reach files or other ports.
CODE_SERVER_PROXIES = frozenset({"proxy", "absproxy"})
CODE_SERVER_FILE_ROUTE = "vscode-remote-resource"
# Sub-resources of one contents path that never return file content.
CONTENTS_SUB_ROUTES = frozenset({"checkpoints", "trust"})


@dataclass(frozen=True)
class Verdict:
    """Why a request is blocked, in terms an auditor can read."""

    route_class: str
    reason: str
    path: str
    """The normalized path below the server's base URL."""


@dataclass
class RequestGuard:
    """Decides, per request, whether it may reach its handler."""

    base_url: str
    policy: GuardPolicy
    locations: Locations
    routes: RouteMap
    contents: ContentPolicy | None
    """None when the contents manager does not keep files on this filesystem."""
    contents_root: str | None
    kernelspec_folder: KernelspecFolder

    open_servers: frozenset[str] = field(init=False)

    def __post_init__(self) -> None:
        if not self.base_url.endswith("/"):
            self.base_url += "/"
        self.open_servers = frozenset(name.lower() for name in self.policy.proxied_servers)

    def decide(self, method: str, raw_path: str, query: QueryArguments) -> Verdict | None:
        for reading, resolve in self._readings(raw_path):
            found = self._judge(segments(reading), method, query, resolve=resolve)
            if found is not None:
                route_class, reason = found
                return Verdict(route_class, reason, self._normalized(raw_path))
        for route in self.routes.static_routes:
            matched, served = route.served_file(raw_path)
            if not matched:
                continue
            if served is None:
                reason = "not found in a folder the platform installed"
                return Verdict(route.route_class, reason, self._normalized(raw_path))
            if not self.locations.is_trusted(served):
                reason = "served from a folder the user can write to"
                return Verdict(route.route_class, reason, self._normalized(raw_path))
            break
        return None

    def _readings(self, raw_path: str) -> list[tuple[str, bool]]:
        """Each reading of the path, and whether the files it leads to are judged on it.

        The raw reading picks the route; handlers act on decoded ones. A plain path has a
        single reading, which is both.
        """
        if is_plain(raw_path):
            return [(relative_to_base(raw_path, self.base_url), True)]
        forms = path_forms(raw_path, self.base_url)
        same = forms.routed == forms.captured
        return [(reading, reading != forms.routed or same) for reading in forms.readings()]

    def _normalized(self, raw_path: str) -> str:
        return path_forms(raw_path, self.base_url).normalized

    def _judge(
        self, parts: list[str], method: str, query: QueryArguments, *, resolve: bool
    ) -> tuple[str, str] | None:
        """The route class and reason a reading is refused for, if it is.

        With `resolve` off (a still-encoded reading) only whole routes are judged; the
        files a route leads to are judged on the decoded readings.
        """
        if not parts:
            return None
        first = parts[0].lower()
        closed = CLOSED_ROUTES.get(first)
        if closed is not None:
            return closed
        second = parts[1].lower() if len(parts) > 1 else ""
        if first == "api":
            if second == "contents":
                return self._contents(parts[2:], method, query) if resolve else None
            if second == "terminals" and not self.policy.terminals:
                return "terminals", "terminals are disabled by policy"
            return None
        if first == "terminals" and not self.policy.terminals:
            return "terminals", "terminals are disabled by policy"
        if first == "kernelspecs":
            return self._kernelspec_file(parts[1:]) if resolve else None
        open_servers = self.open_servers
        if first in self.routes.named_servers or first in open_servers:
            if first not in open_servers:
                return "named-proxy", f"the proxied server '{parts[0]}' is not open to users"
            return self._code_server(parts[1:], query)
        return None

    def _contents(
        self, rest: list[str], method: str, query: QueryArguments
    ) -> tuple[str, str] | None:
        if self.contents is None or self.contents_root is None:
            return None
        sub_route = bool(rest) and (
            rest[-1] in CONTENTS_SUB_ROUTES or (len(rest) > 1 and rest[-2] == "checkpoints")
        )
        target = "/".join(rest)
        os_path = os.path.join(self.contents_root, target)
        if sub_route or method not in ("GET", "HEAD") or not _wants_content(query):
            reason = self.contents.outside_roots(os_path)
        else:
            base64 = any(value == b"base64" for value in query.get("format", ()))
            reason = self.contents.read_refusal(target, os_path, base64=base64)
        return ("contents", reason) if reason else None

    def _kernelspec_file(self, rest: list[str]) -> tuple[str, str] | None:
        refusal = "kernelspec folders serve their launcher logos only"
        if len(rest) != 2 or rest[1] not in KERNEL_LOGOS:
            return "kernelspec-file", refusal
        folder = self.kernelspec_folder(unquote(rest[0]))
        if folder is None:
            return "kernelspec-file", "no such kernelspec"
        logo = os.path.realpath(os.path.join(folder, rest[1]))
        if not is_within(logo, os.path.realpath(folder)) or not self.locations.is_trusted(logo):
            return "kernelspec-file", "the kernelspec sits in a folder the user can write to"
        return None

    def _code_server(self, rest: list[str], query: QueryArguments) -> tuple[str, str] | None:
        lowered = [part.lower() for part in rest]
        if lowered and lowered[0] in CODE_SERVER_PROXIES:
            return "code-server-proxy", "code-server's port proxy is closed"
        if CODE_SERVER_FILE_ROUTE not in lowered:
            return None
        paths = [unquote(value.decode("utf-8", "replace")) for value in query.get("path", ())]
        if paths and all(os.path.isabs(p) and self.locations.is_trusted(p) for p in paths):
            return None
        return "code-server-file", "code-server serves files the platform installed only"


def _wants_content(query: QueryArguments) -> bool:
    """Whether any reading of the `content` argument asks for content (the default)."""
    values = query.get("content", ())
    return not values or any(value != b"0" for value in values)
